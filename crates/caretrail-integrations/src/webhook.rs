//! Standard Webhooks 1.0 over HTTPS.
