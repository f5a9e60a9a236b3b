-- The built-in policies refuse viruses at SMTP time (`cleanmail_core::policy::Policy::standard`).
-- `sync_builtins` refreshes them from the code on every start; this keeps the stored JSON
-- right for anything reading the database before that.
UPDATE policies
SET settings = REPLACE(settings, '"virus":"quarantine"', '"virus":"reject"')
WHERE builtin IS NOT NULL;
