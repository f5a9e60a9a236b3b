UPDATE policies
SET settings = REPLACE(settings, '"virus":"reject"', '"virus":"quarantine"')
WHERE builtin IS NOT NULL;
