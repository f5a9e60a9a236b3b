DROP TABLE tenant_models;
