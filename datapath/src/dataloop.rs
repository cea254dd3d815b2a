//! The shell both daemons put around their protocol core's data path: a thread of its own that waits in
//! epoll (through mio) on its sockets and the core's next timer, and the handle the management side (on
//! the tokio runtime of the main thread) uses to ask it questions and to stop it.
//!
//! Why not a task on the runtime that serves the API: a packet through a tunnel wakes a daemon once per
//! hop, and each wake-up through the runtime went through its I/O driver, a select over several futures and
//! the timer wheel, plus an EPOLLOUT wake-up after every send (strace). On its own epoll thread the edge makes
//! exactly the system calls per packet that a minimal TAP/UDP forwarder makes, and the benchmark's ping p50
//! fell from 0.32 to 0.26 ms (bench/README.md, "What each change bought").

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use mio::{Poll, Token, Waker};
use tokio::sync::{mpsc, oneshot};

/// The token of the management side's wake-ups; the loop's own sources use others.
pub const WAKE: Token = Token(usize::MAX);

/// Queries that may wait before the loop takes them (each is answered between two batches of packets).
const QUEUE: usize = 16;

/// The management side's handle on the loop. Cheap to clone.
pub struct Remote<Q> {
    queries: mpsc::Sender<Q>,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
}

impl<Q> Clone for Remote<Q> {
    fn clone(&self) -> Self {
        Remote {
            queries: self.queries.clone(),
            waker: self.waker.clone(),
            stop: self.stop.clone(),
        }
    }
}

/// The loop has stopped, or (for [`Remote::try_ask`]) its queue is full.
#[derive(Debug, thiserror::Error)]
pub enum AskError {
    #[error("the data path has stopped")]
    Gone,
    #[error("the data path is busy; try again")]
    Busy,
}

impl<Q> Remote<Q> {
    /// Queues `q` (waiting for room) and wakes the loop.
    pub async fn ask(&self, q: Q) -> Result<(), AskError> {
        self.queries.send(q).await.map_err(|_| AskError::Gone)?;
        self.waker.wake().map_err(|_| AskError::Gone)
    }

    /// Asks a question answered on a channel: queues `question(reply)` (waiting for room), wakes the loop
    /// and waits for the answer.
    pub async fn request<T>(
        &self,
        question: impl FnOnce(oneshot::Sender<T>) -> Q,
    ) -> Result<T, AskError> {
        let (reply, answer) = oneshot::channel();
        self.ask(question(reply)).await?;
        answer.await.map_err(|_| AskError::Gone)
    }

    /// Queues `q` without waiting, from outside the runtime too, and wakes the loop.
    pub fn try_ask(&self, q: Q) -> Result<(), AskError> {
        self.queries.try_send(q).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => AskError::Busy,
            mpsc::error::TrySendError::Closed(_) => AskError::Gone,
        })?;
        self.waker.wake().map_err(|_| AskError::Gone)
    }

    /// Asks the loop to stop after its current turn.
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
        let _ = self.waker.wake();
    }
}

/// The loop's end: its poller (register the sockets on it) and the queries and stop request of [`Remote`].
pub struct Inbox<Q> {
    pub poll: Poll,
    queries: mpsc::Receiver<Q>,
    stop: Arc<AtomicBool>,
}

impl<Q> Inbox<Q> {
    /// Whether [`Remote::stop`] was called.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    /// The next waiting query, if any.
    pub fn next_query(&mut self) -> Option<Q> {
        self.queries.try_recv().ok()
    }
}

/// The two ends between the management side and a loop.
pub fn channel<Q>() -> std::io::Result<(Remote<Q>, Inbox<Q>)> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKE)?);
    let (tx, rx) = mpsc::channel(QUEUE);
    let stop = Arc::new(AtomicBool::new(false));
    Ok((
        Remote {
            queries: tx,
            waker,
            stop: stop.clone(),
        },
        Inbox {
            poll,
            queries: rx,
            stop,
        },
    ))
}

/// Runs `body` on a thread named `name` (after the privilege drop, so it inherits the reduced
/// credentials); the receiver yields its result when it returns.
pub fn spawn<T: Send + 'static>(
    name: &str,
    body: impl FnOnce() -> anyhow::Result<T> + Send + 'static,
) -> anyhow::Result<oneshot::Receiver<anyhow::Result<T>>> {
    let (done_tx, done_rx) = oneshot::channel();
    std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            let _ = done_tx.send(body());
        })
        .map_err(|e| anyhow::anyhow!("cannot start the {name} thread: {e}"))?;
    Ok(done_rx)
}

/// Waits on `poll` for at most `timeout`; an interrupted wait is an empty one.
pub fn wait(
    poll: &mut Poll,
    events: &mut mio::Events,
    timeout: std::time::Duration,
) -> std::io::Result<()> {
    match poll.poll(events, Some(timeout)) {
        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {
            events.clear();
            Ok(())
        }
        r => r,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A loop in the shape of the daemons': it answers numbers with their doubles until stopped.
    fn doubling_loop(mut inbox: Inbox<(u32, oneshot::Sender<u32>)>) -> anyhow::Result<u32> {
        let mut events = mio::Events::with_capacity(4);
        let mut answered = 0;
        while !inbox.stopping() {
            // A long timeout: only a wake-up from the Remote can end the wait in time for the test.
            wait(&mut inbox.poll, &mut events, Duration::from_secs(60))?;
            if events.iter().any(|e| e.token() == WAKE) {
                while let Some((n, reply)) = inbox.next_query() {
                    let _ = reply.send(n * 2);
                    answered += 1;
                }
            }
        }
        Ok(answered)
    }

    #[tokio::test]
    async fn asks_wake_the_loop_and_stop_ends_it() {
        let (remote, inbox) = channel().unwrap();
        let done = spawn("dataloop-test", move || doubling_loop(inbox)).unwrap();
        for n in 1..=20u32 {
            let (tx, rx) = oneshot::channel();
            remote.ask((n, tx)).await.unwrap();
            let doubled = tokio::time::timeout(Duration::from_secs(10), rx)
                .await
                .expect("the loop answered without waiting out its 60 s timeout")
                .unwrap();
            assert_eq!(doubled, 2 * n);
        }
        remote.stop();
        let answered = tokio::time::timeout(Duration::from_secs(10), done)
            .await
            .expect("stop ended the loop")
            .unwrap()
            .unwrap();
        assert_eq!(answered, 20);
        let (tx, _rx) = oneshot::channel();
        assert!(matches!(remote.ask((1, tx)).await, Err(AskError::Gone)));
    }

    #[test]
    fn try_ask_says_busy_when_the_queue_is_full() {
        let (remote, mut inbox) = channel::<u32>().unwrap();
        for n in 0..QUEUE as u32 {
            remote.try_ask(n).unwrap();
        }
        assert!(matches!(remote.try_ask(99), Err(AskError::Busy)));
        assert_eq!(inbox.next_query(), Some(0));
        remote.try_ask(99).unwrap();
        drop(inbox);
        assert!(matches!(remote.try_ask(100), Err(AskError::Gone)));
    }
}
