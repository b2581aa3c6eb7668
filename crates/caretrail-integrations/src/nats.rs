//! Publication to NATS JetStream.
