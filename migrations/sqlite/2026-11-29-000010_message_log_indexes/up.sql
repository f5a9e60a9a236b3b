-- A mailbox user's outbound mail (sent from the backup webmail), newest first: the sent
-- folder and the hourly send limit read it without walking the tenant's inbound log.
CREATE INDEX message_log_outbound_sender ON message_log (tenant_id, mail_from, received_at DESC, id DESC)
    WHERE category = 'outbound';
-- The platform admin's message log, newest first (tenants use message_log_tenant_received).
CREATE INDEX message_log_received ON message_log (received_at DESC, id DESC);
