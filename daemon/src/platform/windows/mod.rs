//! The Windows side of the platform layer (see `platform`).

pub mod address_watch;
pub mod api_listener;
pub mod child;
pub mod dns_routing;
pub mod gateway;
pub mod host;
pub mod ifaddrs;
pub mod packet_filter;
pub mod poll;
pub mod routing;
pub mod shutdown;
pub mod socket_table;
pub mod tcp;
pub mod tun_device;
pub mod tun_io;
