//! The supernode's part of the data path: the generic loop of `weft_datapath::driver` drives the state
//! machine (registrations, introductions, punching and relaying; no TAP device); this module answers the
//! management side's queries, turns the machine's events into log lines and `/events`, and saves changed
//! leases.

use std::path::PathBuf;

use std::time::Duration;

use anyhow::Result;
use tokio::sync::oneshot;
use weft_daemon::logbudget::LogBudget;
use weft_datapath::dataloop;
use weft_datapath::driver::{self, Hooks, NoTap};
use weft_proto::supernode::{Supernode, SupernodeEvent};

use crate::events::{log_event, log_held_back_refusals, server_event};
use crate::{leases_file, mgmt, Query};

/// The management side's handle on the loop.
pub type Remote = dataloop::Remote<Query>;
/// The loop's end of [`Remote`].
pub type Inbox = dataloop::Inbox<Query>;

/// What the loop needs besides the state machine and its socket.
pub struct Outside {
    pub inbox: Inbox,
    pub events: tokio::sync::broadcast::Sender<weft_mgmt::ServerEvent>,
    /// Where changed leases are saved.
    pub state_dir: PathBuf,
}

/// Starts the loop on a thread named `weft-data`; the receiver yields its result when it has stopped.
pub fn spawn(
    sn: Supernode,
    udp: std::net::UdpSocket,
    outside: Outside,
) -> Result<oneshot::Receiver<Result<()>>> {
    let Outside {
        inbox,
        events,
        state_dir,
    } = outside;
    let hooks = SupernodeHooks {
        events,
        state_dir,
        refusals: LogBudget::new(REFUSALS_LOGGED, REFUSAL_WINDOW),
    };
    driver::spawn(sn, udp, NoTap, inbox, hooks)
}

/// Refused registrations logged per window; the rest are counted in one line (`weft_daemon::logbudget`).
/// Ten name the edges of an ordinary misconfiguration; a flood adds one line per window.
const REFUSALS_LOGGED: u32 = 10;
const REFUSAL_WINDOW: Duration = Duration::from_secs(10);

/// The supernode's [`Hooks`].
struct SupernodeHooks {
    events: tokio::sync::broadcast::Sender<weft_mgmt::ServerEvent>,
    state_dir: PathBuf,
    refusals: LogBudget,
}

impl Hooks<Supernode> for SupernodeHooks {
    type Query = Query;

    fn answer(&mut self, sn: &mut Supernode, q: Query) {
        match q {
            Query::Snapshot(tx) => {
                let _ = tx.send(mgmt::Snapshot::of(sn));
            }
            Query::SetPolicy(p) => sn.set_policy(p),
        }
    }

    fn event(&mut self, sn: &Supernode, ev: &SupernodeEvent) {
        log_event(sn, ev, &mut self.refusals);
        if self.events.receiver_count() > 0 {
            let _ = self.events.send(server_event(sn, ev));
        }
    }

    fn turn_done(&mut self, sn: &mut Supernode) {
        log_held_back_refusals(&mut self.refusals);
        if let Some(leases) = sn.take_changed_leases() {
            if let Err(e) = leases_file::save(&self.state_dir, &leases) {
                tracing::error!("cannot persist leases: {e:#}");
            }
        }
    }
}
