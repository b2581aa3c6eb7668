//! Schemas (filled in later).
