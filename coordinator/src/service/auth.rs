//! The bearer token every dmtl RPC must carry (`authorization: Bearer <token>`).

use std::sync::Arc;

use tonic::service::Interceptor;
use tonic::{Request, Status};

/// Checks the `authorization` metadata entry against the run's token.
#[derive(Clone)]
pub struct TokenCheck {
    expected: Arc<Vec<u8>>,
}

impl TokenCheck {
    pub fn new(token: &str) -> TokenCheck {
        TokenCheck { expected: Arc::new(format!("Bearer {token}").into_bytes()) }
    }
}

/// Compares without stopping at the first differing byte.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Interceptor for TokenCheck {
    fn call(&mut self, request: Request<()>) -> Result<Request<()>, Status> {
        match request.metadata().get("authorization") {
            None => Err(Status::unauthenticated("missing `authorization: Bearer <token>` metadata")),
            Some(v) if same(v.as_bytes(), &self.expected) => Ok(request),
            Some(_) => Err(Status::unauthenticated("wrong token")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(value: Option<&str>) -> Result<(), Status> {
        let mut r = Request::new(());
        if let Some(v) = value {
            r.metadata_mut().insert("authorization", v.parse().unwrap());
        }
        TokenCheck::new("s3cret").call(r).map(|_| ())
    }

    #[test]
    fn only_the_exact_bearer_token_passes() {
        assert!(call(Some("Bearer s3cret")).is_ok());
        for bad in [None, Some("Bearer s3cre"), Some("Bearer s3cret2"), Some("s3cret"), Some("Basic s3cret")] {
            assert_eq!(call(bad).unwrap_err().code(), tonic::Code::Unauthenticated, "{bad:?}");
        }
    }
}
