//! The `dmtl.v1.Monitor` service: status and the event stream.

use std::pin::Pin;
use std::sync::Arc;

use dmtl_proto::v1::monitor_server::Monitor;
use dmtl_proto::v1::{self, Event};
use tokio::sync::broadcast::error::RecvError;
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use super::convert::{event_to, status_to};
use crate::hub::Hub;

/// The adapter between tonic and the [`Hub`]'s status and events.
pub struct MonitorService {
    pub hub: Arc<Hub>,
    /// Rounds of the whole run (one per step with `local_steps = 1`).
    pub total_rounds: u64,
}

type EventStream = Pin<Box<dyn Stream<Item = Result<Event, Status>> + Send>>;

#[tonic::async_trait]
impl Monitor for MonitorService {
    async fn get_status(&self, _: Request<v1::GetStatusRequest>) -> Result<Response<v1::RunStatus>, Status> {
        Ok(Response::new(status_to(&self.hub.status(), self.total_rounds)))
    }

    type WatchStream = EventStream;

    async fn watch(&self, _: Request<v1::WatchRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let mut rx = self.hub.subscribe();
        let stream = async_stream(move |tx| async move {
            loop {
                match rx.recv().await {
                    Ok(e) => {
                        let last = matches!(e.kind, crate::hub::EventKind::RunFinished { .. });
                        if tx.send(Ok(event_to(&e))).await.is_err() || last {
                            return;
                        }
                    }
                    Err(RecvError::Lagged(n)) => {
                        tracing::debug!(skipped = n, "a watcher fell behind");
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Ok(Response::new(stream))
    }
}

/// A stream fed by a spawned task through a bounded channel.
fn async_stream<F, Fut>(body: F) -> EventStream
where
    F: FnOnce(tokio::sync::mpsc::Sender<Result<Event, Status>>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(body(tx));
    Box::pin(tokio_stream::wrappers::ReceiverStream::new(rx))
}
