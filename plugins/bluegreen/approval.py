"""The promotion gate: providers-standard's ApprovalOperator, asked only when the app's config
or the run's form wants approval, with a body that shows the new color."""

from __future__ import annotations

import datetime

from airflow.providers.standard.exceptions import HITLRejectException
from airflow.providers.standard.operators.hitl import ApprovalOperator

from .operators import ReleaseStepOperator
from .release.model import ReleaseError


class ReleaseApprovalOperator(ApprovalOperator, ReleaseStepOperator):
    """A person approves the switch (Browse > Required Actions in the UI).  Reject runs the
    rollback path; without an answer within the app's approval_timeout, its approval_default
    is taken.  When no approval is asked, the task passes at once."""

    ui_color = "#fff4cc"

    def __init__(self, *, app: dict, approval_timeout: float | None = None, approval_default: str = "Reject", **kwargs):
        super().__init__(
            app=app,
            subject="Approve the switch?",
            fail_on_reject=True,
            defaults=[approval_default],
            response_timeout=datetime.timedelta(seconds=approval_timeout) if approval_timeout else None,
            **kwargs,
        )

    def execute(self, context):
        if not (context.get("params") or {}).get("approval"):
            self.log.info("no approval asked for this run: going on to the switch")
            return None
        plan = self.plan_of(context)
        if plan is None:
            self.fail(context, "no release plan in this run (the plan task pushed none): nothing to approve")
        release = self.release(context)
        try:
            # Nothing renews the lock while a task awaits input: start the wait with a whole
            # lease (the app's approval timeout is shorter than it; see AppConfig).
            release.keep(plan, renew=True)
        except ReleaseError as e:
            self.fail(context, str(e))
        self.subject = f"Switch {release.app.name} to {plan.new_color} ({plan.image})?"
        self.body = release.approval_summary(plan)
        return super().execute(context)

    def execute_complete(self, context, event=None):
        who = ((event or {}).get("responded_by_user") or {}).get("name") or "the default (no answer in time)"
        try:
            result = super().execute_complete(context, event)
        except HITLRejectException:
            plan = self.plan_of(context)
            if plan is None:
                self.fail(context, f"the switch was rejected by {who}")
            self.fail(context, f"the switch to {plan.new_color} ({plan.image}) was rejected by {who}")
        self.log.info("the switch was approved by %s", who)
        return result
