DROP TABLE api_keys;
DROP TABLE operators;
DROP TABLE aliases;
DROP TABLE users;
DROP TABLE address_claims;
DROP TABLE domains;
DROP TABLE tenants;
DROP TABLE resellers;
