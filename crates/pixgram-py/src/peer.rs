//! Addresses from Python: "host:port" or a (host, port) tuple.

use std::net::{SocketAddr, ToSocketAddrs};

use pyo3::prelude::*;

use crate::errors::AddressError;

/// The first socket address `addr` ("host:port" or (host, port)) resolves to.
pub fn resolve_peer(addr: &Bound<'_, PyAny>) -> PyResult<SocketAddr> {
    let text = match addr.extract::<(String, u16)>() {
        Ok((host, port)) if host.contains(':') => format!("[{host}]:{port}"),
        Ok((host, port)) => format!("{host}:{port}"),
        Err(_) => addr.extract::<String>()?,
    };
    if let Some((scheme, _)) = text.split_once("://") {
        return Err(AddressError::new_err(format!(
            "{text:?}: an address here is host:port, without a {scheme}:// scheme"
        )));
    }
    text.to_socket_addrs()
        .map_err(|e| AddressError::new_err(format!("cannot resolve {text:?}: {e}")))?
        .next()
        .ok_or_else(|| AddressError::new_err(format!("{text:?} resolves to no address")))
}

/// `addr` as Python's (host, port).
pub fn peer_tuple(addr: SocketAddr) -> (String, u16) {
    (addr.ip().to_string(), addr.port())
}
