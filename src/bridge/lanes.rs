//! [`Lanes`]: one ordered lane of work per portal, lanes running side by side up to a bound, so
//! one slow or waiting portal never holds up the others while each portal keeps QQ's order.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

use tokio::sync::Semaphore;

/// One unit of work of a lane.
pub type Job = Pin<Box<dyn Future<Output = ()>>>;

/// Ordered lanes keyed by a portal key, on the current thread (the bridge actor's arbiter).
///
/// Jobs pushed under one key run one after another in push order; jobs under different keys run
/// concurrently, at most `limit` at a time. A lane with nothing queued goes away, so idle
/// portals cost nothing.
#[derive(Clone)]
pub struct Lanes {
    queues: Rc<RefCell<HashMap<String, VecDeque<Job>>>>,
    limit: Rc<Semaphore>,
}

impl Lanes {
    /// Lanes with at most `limit` jobs (of different keys) running at once; at least one.
    pub fn new(limit: usize) -> Self {
        Lanes {
            queues: Rc::new(RefCell::new(HashMap::new())),
            limit: Rc::new(Semaphore::new(limit.max(1))),
        }
    }

    /// Queues `job` behind the jobs already queued under `key`. Must be called inside a tokio
    /// `LocalSet` (an actix arbiter is one).
    pub fn push(&self, key: &str, job: Job) {
        let mut queues = self.queues.borrow_mut();
        if let Some(queue) = queues.get_mut(key) {
            queue.push_back(job);
            return;
        }
        queues.insert(key.to_owned(), VecDeque::from([job]));
        drop(queues);
        tokio::task::spawn_local(run_lane(key.to_owned(), self.clone()));
    }

    /// Jobs queued and not yet started, over every lane.
    pub fn pending(&self) -> usize {
        self.queues.borrow().values().map(VecDeque::len).sum()
    }

    /// Lanes that have work.
    pub fn active(&self) -> usize {
        self.queues.borrow().len()
    }
}

/// Runs lane `key` until its queue is empty, then removes it. The lane's (possibly empty) queue
/// stays in the map while a job runs, so a push during the run lands behind it in this lane.
async fn run_lane(key: String, lanes: Lanes) {
    loop {
        let job = {
            let mut queues = lanes.queues.borrow_mut();
            match queues.get_mut(&key).and_then(VecDeque::pop_front) {
                Some(job) => job,
                None => {
                    queues.remove(&key);
                    return;
                }
            }
        };
        // The semaphore is never closed, so acquiring only fails if it were; then run unbounded
        // rather than drop the job.
        let permit = lanes.limit.acquire().await.ok();
        job.await;
        drop(permit);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn record(log: &Rc<RefCell<Vec<String>>>, entry: String, delay_ms: u64) -> Job {
        let log = log.clone();
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(delay_ms)).await;
            log.borrow_mut().push(entry);
        })
    }

    async fn settle(lanes: &Lanes) {
        for _ in 0..500 {
            if lanes.active() == 0 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("lanes did not drain");
    }

    #[tokio::test(flavor = "current_thread")]
    async fn test_order_within_a_lane_and_overtaking_across_lanes() {
        tokio::task::LocalSet::new()
            .run_until(async {
                let lanes = Lanes::new(8);
                let log = Rc::new(RefCell::new(Vec::new()));
                // Lane a is slow; b's quick jobs must not wait for it, and a keeps its order.
                lanes.push("a", record(&log, "a1".into(), 60));
                lanes.push("a", record(&log, "a2".into(), 1));
                lanes.push("b", record(&log, "b1".into(), 1));
                lanes.push("b", record(&log, "b2".into(), 1));
                settle(&lanes).await;
                let log = log.borrow().clone();
                assert_eq!(log, ["b1", "b2", "a1", "a2"]);
            })
            .await;
    }

    #[tokio::test(flavor = "current_thread")]
    async fn test_push_while_running_joins_the_same_lane() {
        tokio::task::LocalSet::new()
            .run_until(async {
                let lanes = Lanes::new(8);
                let log = Rc::new(RefCell::new(Vec::new()));
                lanes.push("a", record(&log, "a1".into(), 30));
                tokio::time::sleep(Duration::from_millis(10)).await;
                assert_eq!(lanes.active(), 1);
                lanes.push("a", record(&log, "a2".into(), 0));
                settle(&lanes).await;
                assert_eq!(*log.borrow(), ["a1", "a2"]);
                assert_eq!(lanes.pending(), 0);
            })
            .await;
    }

    #[tokio::test(flavor = "current_thread")]
    async fn test_limit_bounds_running_lanes() {
        tokio::task::LocalSet::new()
            .run_until(async {
                let lanes = Lanes::new(2);
                let running = Rc::new(RefCell::new((0usize, 0usize)));
                for lane in 0..6 {
                    let running = running.clone();
                    lanes.push(
                        &format!("lane{lane}"),
                        Box::pin(async move {
                            {
                                let mut r = running.borrow_mut();
                                r.0 += 1;
                                r.1 = r.1.max(r.0);
                            }
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            running.borrow_mut().0 -= 1;
                        }),
                    );
                }
                settle(&lanes).await;
                assert_eq!(running.borrow().1, 2, "at most two lanes at once, and two did run");
            })
            .await;
    }
}
