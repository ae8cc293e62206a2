//! The gRPC edge: one adapter per service ([`coordinator`], [`monitor`]),
//! the conversions and error mapping ([`convert`]) and the token check
//! ([`auth`]). Generated `dmtl.v1` types do not pass this module.

pub mod auth;
pub mod convert;
pub mod coordinator;
pub mod monitor;
