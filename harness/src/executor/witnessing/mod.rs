//! The executor's side of the [witness](crate::witness): which writes
//! name whose data (and so whom to read before they go out), whose data an
//! answered write may legitimately have changed, and the witness's own
//! requests, logged in the run's order like any other ([`flow`]: the reads
//! around a foreign write).

mod flow;

pub use flow::{Aimed, Pending, after_batch, before_write, end_of_flow};

use super::Executor;
use crate::judge::{self, Attribution, Context, Exchange, Verdict};
use crate::plan::StepRef;
use crate::transport::{Request, Response};
use crate::witness::{self, Aim, Witness};
use crate::world::InstanceId;

use std::sync::atomic::Ordering;

impl Executor {
    /// For a write: who it goes out as and whose data it names (and whose
    /// canaries it carries, which its judges need too); the witness reads
    /// the victims (those the writer may not see) first.
    pub(super) async fn aim(
        &self,
        request: &Request,
        observer: InstanceId,
        attribution: Attribution,
    ) -> Option<(Aim, Vec<InstanceId>)> {
        if !witness::writes(&request.method) {
            return None;
        }
        let writer = (attribution != Attribution::None).then_some(observer);
        let carried = self.oracle.canaries_in(&request.path, &request.body);
        let mut targets = witness::targets(&self.world, &carried, request);
        // Without a credential, the sender's own words (its sign-up, its
        // login) name only itself: it is no victim of its own request.
        if writer.is_none() {
            targets.retain(|t| *t != observer);
        }
        let aim = witness::aim(&self.world, writer, &targets);
        if !aim.victims.is_empty() {
            before_write(self, &aim.victims).await;
        }
        Some((aim, carried))
    }

    /// An answered write may have changed the data of the others it named
    /// and may see, and of its writer, unless it named others it may not
    /// see and was refused: a probe at another's records that the server
    /// turned down changed nothing of the prober's.
    pub(super) fn touch(&self, aim: &Aim, status: u16) {
        for id in &aim.allowed {
            if Some(*id) != aim.writer {
                self.witness.touch(*id);
            }
        }
        if let Some(writer) = aim.writer
            && (aim.victims.is_empty() || (200..300).contains(&status))
        {
            self.witness.touch(writer);
        }
    }

    /// Sends `step` again as `id` with its own credentials, for the
    /// witness: logged as `{label}: {step}`, judged by nobody (a login's
    /// fresh session or token is kept, as a server may end the old one).
    pub(crate) async fn resend(
        &self,
        id: InstanceId,
        step_ref: StepRef,
        label: &str,
    ) -> Option<Response> {
        let step = self.plan().step(step_ref);
        let built = self.build(id, step_ref, Some(id)).ok()?;
        let seq = self.seq.fetch_add(1, Ordering::Relaxed);
        let result = self.transport.send(&built.request).await;
        let request = built.request;
        let status = result.as_ref().ok().map(|r| r.status);
        let name = format!("{label}: {}", step.name);
        let mut issued = self.issued(seq, id, name, &request, status);
        let response = result.ok()?;
        let exchange = Exchange::new(id, id, Attribution::Full, step_ref, request, response);
        let mut verdict = Verdict::default();
        if label.contains("login") && (200..300).contains(&exchange.response.status) {
            let detached = Witness::detached();
            let cx = Context {
                witness: &detached,
                ..self.context()
            };
            judge::session::judge(&exchange, &cx, &mut verdict);
            judge::capture::judge(&exchange, &cx, &mut verdict);
        }
        if self.options.record {
            issued.exchange = Some(self.recorded(&exchange, verdict));
        }
        self.lock_witnessed().push(issued);
        Some(exchange.response)
    }
}
