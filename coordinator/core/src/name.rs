//! Names users type: the rule lives in `warren_proto::name`, shared with the daemon (which
//! checks a host name before it reaches a coordinator).

pub use warren_proto::name::*;
