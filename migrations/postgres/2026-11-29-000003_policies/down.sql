DROP TABLE user_policy_overrides;
DROP TABLE domain_policy_overrides;
DROP TABLE tenant_policies;
DROP TABLE policies;
