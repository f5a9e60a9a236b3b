//! Where a recipient's effective policy comes from.

use cleanmail_core::EffectivePolicy;
use cleanmail_core::policy::{Disposition, Policy};
use cleanmail_schema::store::routing::RecipientRoute;

/// The effective policy (tenant → domain → user overrides, aliases resolved to their user)
/// of one recipient.
///
/// The one place to swap in stored policies. Until they land it returns the built-in
/// standard policy with one change: viruses are refused at SMTP time (the standard preset
/// quarantines them; the ingest issue asks for EICAR to be refused at DATA). A reject score
/// threshold stays unset as in the preset, so GTUBE (score 1000) is quarantined.
pub fn effective_policy_for(route: &RecipientRoute) -> EffectivePolicy {
    let _ = route;
    let mut policy = Policy::standard();
    policy.actions.virus = Disposition::Reject;
    EffectivePolicy::from_tenant(&policy)
}
