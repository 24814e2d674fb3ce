//! Streamed answers (watches, followed logs): a task feeds a channel.

use bytes::Bytes;

/// A stream fed by a task through a channel; the task stops when the client goes.
pub fn async_stream<F, Fut>(f: F) -> impl futures::Stream<Item = Bytes>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Bytes>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    tokio::spawn(f(tx));
    tokio_stream::wrappers::ReceiverStream::new(rx)
}
