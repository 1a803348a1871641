"""The deploy pipeline's own tools, run from the repository root with ``python -m delivery.<tool>``.

Not part of the wheel (pyproject.toml packages only ``pulse`` and ``pulse_core``): these run on a GitHub
runner or a person's machine, never on a job cluster.

* ``delivery.plan``: the names and artifact paths of one environment's deploy (``make deploy-plan``).
* ``delivery.state_versions``: the state-version check against the last deploy, and its record.
* ``delivery.hold``: holds the streaming job paused in the plan of a deploy that resets checkpoints.
* ``delivery.databricks``: the deploy's Databricks calls (wheel upload, job restart or reset, smoke
  test, deploy record, the bootstrap secret scope's check), with the Databricks SDK.
* ``delivery.registry``: checks that the dashboard image can be pulled without credentials.
"""
