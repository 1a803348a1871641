"""The jobs' delta-rs commits get a Unity Catalog service credential, scoped to the layer containers.

Unity Catalog hands storage credentials to Spark only, so the jobs' delta-rs commits (PULSE_GOLD_WRITER
=delta-rs, `pulse.lake_access`) authenticate with a *service credential*: a managed identity of its own
(an access connector), allowed to write the layer containers and nothing else, whose tokens only the
jobs' principal may ask for (ACCESS). Each rule below is checked on every environment's synthesized JSON.
"""

from __future__ import annotations

import re

from infra_testkit import SynthesizedStack

from infra.components.datalake import ARTIFACTS_CONTAINER, LAYERS
from infra.config import DATABRICKS_GOLD_WRITER
from pulse_core.settings import PulseSettings

MIN_PROPAGATION_SECONDS = 120  # as tests/infra/test_infra_first_deploy.py: Azure propagates roles in minutes


def _service_credential(stack: SynthesizedStack) -> tuple[str, dict]:
    found = {lid: body for lid, body in stack.resources("databricks_credential").items()}
    assert len(found) == 1, f"expected one Unity Catalog credential for the jobs, found {sorted(found)}"
    return next(iter(found.items()))


def _commit_connector(stack: SynthesizedStack) -> str:
    """The logical id of the access connector the service credential wraps."""
    _, credential = _service_credential(stack)
    ref = credential["azure_managed_identity"]["access_connector_id"]
    match = re.fullmatch(r"\$\{azurerm_databricks_access_connector\.([^.]+)\.id\}", ref)
    assert match, ref
    return match[1]


def test_the_jobs_get_a_service_credential_of_their_own_identity(stack: SynthesizedStack) -> None:
    _, credential = _service_credential(stack)
    assert credential["purpose"] == "SERVICE"
    connector = _commit_connector(stack)
    _, storage_credential = stack.only("databricks_storage_credential")
    uc_connector = storage_credential["azure_managed_identity"]["access_connector_id"]
    # Not Unity Catalog's own identity, which holds the whole lake account.
    assert uc_connector != stack.ref("azurerm_databricks_access_connector", connector, "id")


def _commit_principal(stack: SynthesizedStack) -> str:
    """The interpolation of the commit identity's principal id."""
    connector = _commit_connector(stack)
    return stack.ref("azurerm_databricks_access_connector", connector, "identity[0].principal_id")


def test_the_commit_identity_writes_the_layer_containers_and_nothing_else(stack: SynthesizedStack) -> None:
    principal = _commit_principal(stack)
    held = [a for a in stack.resources("azurerm_role_assignment").values() if a["principal_id"] == principal]
    containers = stack.resources("azurerm_storage_container")
    by_ref = {stack.ref("azurerm_storage_container", lid, "resource_manager_id"): body["name"]
              for lid, body in containers.items()}  # fmt: skip
    assert {a["role_definition_name"] for a in held} == {"Storage Blob Data Contributor"}
    scopes = [by_ref.get(a["scope"], a["scope"]) for a in held]
    assert sorted(scopes) == sorted(LAYERS), f"scoped to {scopes}, wanted exactly the layer containers"
    assert ARTIFACTS_CONTAINER not in scopes


def test_the_credential_waits_until_its_roles_have_propagated(stack: SynthesizedStack) -> None:
    principal = _commit_principal(stack)
    assignments = {f"azurerm_role_assignment.{lid}"
                   for lid, a in stack.resources("azurerm_role_assignment").items()
                   if a["principal_id"] == principal}  # fmt: skip
    _, credential = _service_credential(stack)
    (sleep_ref,) = credential["depends_on"]
    sleep = stack.resources("time_sleep")[sleep_ref.removeprefix("time_sleep.")]
    assert set(sleep["depends_on"]) == assignments
    duration = re.fullmatch(r"(\d+)([smh])", sleep["create_duration"])
    assert duration
    assert int(duration[1]) * {"s": 1, "m": 60, "h": 3600}[duration[2]] >= MIN_PROPAGATION_SECONDS


def test_only_the_jobs_principal_may_use_the_credential(stack: SynthesizedStack) -> None:
    credential_id, _ = _service_credential(stack)
    name = stack.ref("databricks_credential", credential_id, "name")
    grants = [g for g in stack.resources("databricks_grants").values() if g.get("credential") == name]
    assert len(grants) == 1
    principal_id, _ = stack.only("databricks_service_principal")
    job_sp = stack.ref("databricks_service_principal", principal_id, "application_id")
    assert grants[0]["grant"] == [{"principal": job_sp, "privileges": ["ACCESS"]}]


def test_every_job_commits_with_delta_rs_and_names_the_credential(stack: SynthesizedStack) -> None:
    credential_id, _ = _service_credential(stack)
    name = stack.ref("databricks_credential", credential_id, "name")
    assert DATABRICKS_GOLD_WRITER == "delta-rs"
    for job in stack.resources("databricks_job").values():
        env_vars = job["job_cluster"][0]["new_cluster"]["spark_env_vars"]
        assert env_vars["PULSE_GOLD_WRITER"] == DATABRICKS_GOLD_WRITER
        assert env_vars["PULSE_DELTA_RS_CREDENTIAL"] == name
        # The settings the job builds from that environment are valid (a credential with the Spark
        # writer would be refused at start).
        settings = PulseSettings(gold_writer=env_vars["PULSE_GOLD_WRITER"], delta_rs_credential="commits")
        assert settings.delta_rs_credential == "commits"
