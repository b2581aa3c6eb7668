-- Tokens may expire: a token past its expiry authenticates no request and ends its streams.
ALTER TABLE api_tokens ADD COLUMN expires_at INTEGER;
