//! The GSO batch lives in `warren_proto` now, shared with the coordinator's relay, which
//! batches its sends the same way; this keeps the daemon's paths to it.

pub use warren_proto::tx_batch::*;
