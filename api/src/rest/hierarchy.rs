//! Resellers, tenants and domains.

pub mod resellers {
    use crate::service::resellers::*;
    crate::rest::crud_handlers!(
        service: resellers, tag: "resellers",
        collection: "/api/v1/resellers", item_path: "/api/v1/resellers/{id}",
        item: Reseller, create: CreateReseller, update: UpdateReseller, filter: ResellerFilter,
    );
}

pub mod tenants {
    use crate::service::tenants::*;
    crate::rest::crud_handlers!(
        service: tenants, tag: "tenants",
        collection: "/api/v1/tenants", item_path: "/api/v1/tenants/{id}",
        item: Tenant, create: CreateTenant, update: UpdateTenant, filter: TenantFilter,
    );
}

pub mod domains {
    use crate::service::domains::*;
    crate::rest::crud_handlers!(
        service: domains, tag: "domains",
        collection: "/api/v1/domains", item_path: "/api/v1/domains/{id}",
        item: Domain, create: CreateDomain, update: UpdateDomain, filter: DomainFilter,
    );
}
