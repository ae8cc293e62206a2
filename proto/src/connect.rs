//! The client side of a connection to a coordinator: a lazy [`channel`] with
//! `dmtl.v1`'s flow control and keep-alive (TLS when a CA is given), the
//! [`BearerToken`] every request carries, and a [`Client`] with the message
//! limits set. Workers, the tests and the CLI's monitoring commands all
//! connect through it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

use crate::v1::coordinator_client::CoordinatorClient;
use crate::{CONNECTION_WINDOW_BYTES, MAX_FRAME_BYTES, MAX_MESSAGE_BYTES, STREAM_WINDOW_BYTES};

/// Why a connection to a coordinator cannot be set up (before any request:
/// the channel is lazy). Messages name the flag the value came from.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("--coordinator {url}: {source}")]
    Url {
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("--coordinator {url}: https needs --tls-ca")]
    HttpsWithoutCa { url: String },
    #[error("--tls-ca {}: {source}", path.display())]
    ReadCa {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--tls-ca {}: {source}", path.display())]
    Tls {
        path: PathBuf,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("the token must be printable ASCII")]
    Token,
}

/// Adds the bearer token to every request.
#[derive(Clone)]
pub struct BearerToken(MetadataValue<Ascii>);

impl BearerToken {
    pub fn new(token: &str) -> Result<BearerToken, ConnectError> {
        format!("Bearer {token}").parse().map(BearerToken).map_err(|_| ConnectError::Token)
    }
}

impl tonic::service::Interceptor for BearerToken {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        request.metadata_mut().insert("authorization", self.0.clone());
        Ok(request)
    }
}

/// A coordinator client that sends the bearer token.
pub type Client = CoordinatorClient<InterceptedService<Channel, BearerToken>>;

/// A channel to `url` (lazy: connects on first use, reconnects after failures).
pub fn channel(url: &str, tls_ca: Option<&PathBuf>) -> Result<Channel, ConnectError> {
    let mut endpoint = Endpoint::from_shared(url.to_string())
        .map_err(|source| ConnectError::Url { url: url.to_string(), source })?
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .initial_stream_window_size(STREAM_WINDOW_BYTES)
        .initial_connection_window_size(CONNECTION_WINDOW_BYTES)
        .max_frame_size(MAX_FRAME_BYTES)
        .http2_keep_alive_interval(Duration::from_secs(20))
        .keep_alive_while_idle(true);
    if let Some(ca) = tls_ca {
        endpoint = endpoint.tls_config(tls(ca)?).map_err(|source| ConnectError::Tls { path: ca.clone(), source })?;
    } else if url.starts_with("https://") {
        return Err(ConnectError::HttpsWithoutCa { url: url.to_string() });
    }
    Ok(endpoint.connect_lazy())
}

/// The TLS settings that trust the CA certificate (PEM) at `ca`.
fn tls(ca: &Path) -> Result<ClientTlsConfig, ConnectError> {
    let pem = std::fs::read(ca).map_err(|source| ConnectError::ReadCa { path: ca.to_path_buf(), source })?;
    Ok(ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem)))
}

/// A client with the token and message limits set.
pub fn client(url: &str, tls_ca: Option<&PathBuf>, token: &str) -> Result<Client, ConnectError> {
    let ch = channel(url, tls_ca)?;
    Ok(CoordinatorClient::with_interceptor(ch, BearerToken::new(token)?)
        .max_decoding_message_size(MAX_MESSAGE_BYTES)
        .max_encoding_message_size(MAX_MESSAGE_BYTES))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_that_is_not_printable_ascii_is_refused() {
        assert!(BearerToken::new("s3cret-token").is_ok());
        assert!(matches!(BearerToken::new("line\nbreak"), Err(ConnectError::Token)));
    }

    #[test]
    fn an_https_url_without_a_ca_is_refused_naming_the_url() {
        let err = channel("https://coordinator:50051", None).unwrap_err();
        assert_eq!(err.to_string(), "--coordinator https://coordinator:50051: https needs --tls-ca");
    }

    #[test]
    fn a_missing_ca_file_is_named_in_the_error() {
        let err = channel("https://coordinator:50051", Some(&PathBuf::from("/nowhere/ca.pem"))).unwrap_err();
        assert!(matches!(err, ConnectError::ReadCa { .. }), "{err:?}");
        assert!(err.to_string().starts_with("--tls-ca /nowhere/ca.pem: "), "{err}");
    }

    #[test]
    fn a_malformed_url_is_refused_naming_it() {
        let err = channel("not a url", None).unwrap_err();
        assert!(matches!(err, ConnectError::Url { .. }), "{err:?}");
        assert!(err.to_string().starts_with("--coordinator not a url: "), "{err}");
    }
}
