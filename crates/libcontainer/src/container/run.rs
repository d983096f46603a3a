//! `run`: create and start in one go and, in the foreground, wait for the
//! container while relaying signals and its terminal.

use std::os::fd::AsFd;

use super::create::{create, CreateOptions};
use super::foreground::{self, Blocked};
use super::start::start_locked;
use super::{destroy, kill_and_wait};
use crate::error::Result;
use crate::state::Store;
use crate::trace::Stages;

/// `run`: create, start and, in the foreground, wait for the container
/// while forwarding signals (and relaying its terminal), then delete it
/// unless `keep`. Returns the exit code for the caller to exit with.
pub fn run(store: &Store, opts: &CreateOptions, keep: bool) -> Result<i32> {
    if !opts.foreground {
        let c = create(store, opts)?;
        let listener = start_locked(&c.dir, &c.state, opts.notify_socket, Some(&c.pidfd), &mut Stages::start("start"))?;
        drop(c.dir);
        if let Some(l) = listener {
            l.wait(c.pidfd.as_fd(), c.pid.as_raw())?;
        }
        return Ok(0);
    }
    let blocked = Blocked::new()?;
    let result = (|| {
        let c = create(store, opts)?;
        let started = start_locked(&c.dir, &c.state, opts.notify_socket, Some(&c.pidfd), &mut Stages::start("start"));
        let mut t = Stages::start("run");
        let r = started.and_then(|notify| foreground::wait(c.pid, &c.pidfd, c.console.as_ref(), &blocked, notify.as_ref()));
        t.mark("the container's process ran");
        let dir = c.dir;
        let code = match r {
            Ok(code) => code,
            Err(e) => {
                kill_and_wait(&c.state);
                let _ = destroy(dir, &c.state);
                return Err(e);
            }
        };
        if !keep {
            kill_and_wait(&c.state);
            destroy(dir, &c.state)?;
            t.mark("delete");
        }
        Ok(code)
    })();
    drop(blocked);
    result
}
