"""Issue 27: the hosted dashboard admits only the organisation, over the synthesized JSON.

Each rule is a function that returns its violations. It runs on every synthesized stack (no violation) and
on copies broken the way a stack without the rule would be (a violation), so each test can fail.
docs/infra.md ("Who can open the dashboard") explains the design.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from infra_testkit import AUTH_CONFIG, SynthesizedStack
from pydantic import ValidationError

from infra.components.dashboard import HEALTH_PATH
from infra.config import ENVIRONMENTS, DashboardConfig, EnvConfig
from infra.variables import SIGN_IN_VARIABLES

# What an unauthenticated request may get: a redirect to the sign-in page, or a 401. Never the page.
REFUSALS = {"RedirectToLoginPage", "Return401"}
CLIENT_ID = "${var.dashboard_auth_client_id}"
CLIENT_SECRET = "${var.dashboard_auth_client_secret}"  # noqa: S105 - a variable reference
VIEWER_GROUP = "${var.dashboard_viewer_group_id}"


def _tenant(stack: SynthesizedStack) -> str:
    (client,) = stack.doc["data"]["azurerm_client_config"]
    return f"${{data.azurerm_client_config.{client}.tenant_id}}"


def _public_apps(stack: SynthesizedStack) -> dict[str, dict[str, Any]]:
    return {
        lid: app
        for lid, app in stack.resources("azurerm_container_app").items()
        if app.get("ingress", {}).get("external_enabled")
    }


def _auth_configs(stack: SynthesizedStack, app_id: str) -> list[dict[str, Any]]:
    parent = stack.ref("azurerm_container_app", app_id, "id")
    return [body for body in stack.arm_resources(AUTH_CONFIG).values() if body["parent_id"] == parent]


def _the_auth_config(stack: SynthesizedStack) -> dict[str, Any]:
    (app_id,) = _public_apps(stack)
    (auth,) = _auth_configs(stack, app_id)
    return auth


def _entra(auth: dict[str, Any]) -> dict[str, Any]:
    return auth["body"]["properties"].get("identityProviders", {}).get("azureActiveDirectory", {})


# ----------------------------------------------------------------------------------------------- rules


def sign_in_violations(stack: SynthesizedStack) -> list[str]:
    """Every app reachable from the internet makes an unauthenticated request sign in with Entra ID in the
    organisation's tenant (the one the deploy runs in), with the registration's secret held as a reference."""
    problems = []
    for app_id, app in _public_apps(stack).items():
        configs = _auth_configs(stack, app_id)
        if len(configs) != 1:
            problems.append(f"{app_id}: {len(configs)} auth configs on an internet-facing app, expected 1")
            continue
        (auth,) = configs
        properties = auth["body"]["properties"]
        validation = properties.get("globalValidation", {})
        if auth["name"] != "current" or properties.get("platform", {}).get("enabled") is not True:
            problems.append(f"{app_id}: authentication is not enabled")
        if validation.get("unauthenticatedClientAction") not in REFUSALS:
            problems.append(f"{app_id}: an unauthenticated request is not refused")
        providers = properties.get("identityProviders", {})
        if set(providers) != {"azureActiveDirectory"} or _entra(auth).get("enabled") is not True:
            problems.append(f"{app_id}: Entra ID is not the only sign-in: {sorted(providers)}")
        registration = _entra(auth).get("registration", {})
        issuer = f"https://login.microsoftonline.com/{_tenant(stack)}/v2.0"
        if registration.get("openIdIssuer") != issuer:
            problems.append(f"{app_id}: the issuer {registration.get('openIdIssuer')!r} is not the tenant's")
        if registration.get("clientId") != CLIENT_ID:
            problems.append(f"{app_id}: the client id does not come from the bootstrap variable")
        secrets = {secret["name"]: secret.get("value") for secret in app.get("secret", [])}
        if secrets.get(registration.get("clientSecretSettingName")) != CLIENT_SECRET:
            problems.append(
                f"{app_id}: the client secret is not the app's secret from the sensitive variable"
            )
    return problems


def opt_out_violations(stack: SynthesizedStack) -> list[str]:
    """No app is reachable from the internet without a sign-in, unless the stack's config opts out; only dev
    may, and its plan then warns."""
    problems = []
    public = stack.config.dashboard.public
    for app_id in _public_apps(stack):
        if not public and not _auth_configs(stack, app_id):
            problems.append(f"{app_id}: internet-facing without sign-in, and the config does not opt out")
        if public and stack.config.env != "dev":
            problems.append(f"{app_id}: {stack.config.env} opts out of sign-in; only dev may")
    # A check that fails is a warning in `terraform plan`: it fails while the ingress is external.
    check = stack.doc.get("check", {}).get("dashboard_sign_in", {}).get("assert", {})
    (app_id,) = stack.resources("azurerm_container_app")
    condition = f"${{!azurerm_container_app.{app_id}.ingress[0].external_enabled}}"
    warns = check.get("condition") == condition and "without sign-in" in check.get("error_message", "")
    if public and not warns:
        problems.append("the config opts out of sign-in, and the plan does not warn")
    if not public and check:
        problems.append("the plan warns of a public dashboard that signs users in")
    return problems


def health_path_violations(stack: SynthesizedStack) -> list[str]:
    """The probes use Streamlit's health path, which is the only path served without sign-in."""
    problems = []
    (app,) = stack.resources("azurerm_container_app").values()
    (container,) = app["template"]["container"]
    for probe in ("liveness_probe", "readiness_probe"):
        if [p["path"] for p in container.get(probe, [])] != [HEALTH_PATH]:
            problems.append(f"the {probe} does not ask {HEALTH_PATH}")
    for auth in stack.arm_resources(AUTH_CONFIG).values():
        excluded = auth["body"]["properties"].get("globalValidation", {}).get("excludedPaths", [])
        if excluded != [HEALTH_PATH]:
            problems.append(f"served without sign-in: {excluded}, expected only {HEALTH_PATH}")
    return problems


def viewer_group_violations(stack: SynthesizedStack) -> list[str]:
    """Where the config names a viewer group, only its members are admitted; elsewhere no group is asked."""
    wanted = (
        {"allowedPrincipals": {"groups": [VIEWER_GROUP]}} if stack.config.dashboard.viewer_group else None
    )
    problems = []
    for auth in stack.arm_resources(AUTH_CONFIG).values():
        policy = _entra(auth).get("validation", {}).get("defaultAuthorizationPolicy")
        if policy != wanted:
            problems.append(f"the authorization policy is {policy}, expected {wanted}")
    if stack.config.dashboard.viewer_group and "dashboard_viewer_group_id" not in stack.doc["variable"]:
        problems.append("the viewer group is not a variable the deploy sets")
    return problems


# ----------------------------------------------------------------------------------------------- tests


def _broken(stack: SynthesizedStack, mutate: Callable[[dict[str, Any]], None]) -> SynthesizedStack:
    doc = copy.deepcopy(stack.doc)
    mutate(doc)
    return dataclasses.replace(stack, doc=doc)


def _auth_body(doc: dict[str, Any]) -> dict[str, Any]:
    (auth,) = [b for b in doc["resource"]["azapi_resource"].values() if b["type"].startswith(AUTH_CONFIG)]
    return auth


def _entra_in(doc: dict[str, Any]) -> dict[str, Any]:
    return _auth_body(doc)["body"]["properties"]["identityProviders"]["azureActiveDirectory"]


def _app_in(doc: dict[str, Any]) -> dict[str, Any]:
    (app,) = doc["resource"]["azurerm_container_app"].values()
    return app


def _drop_auth_config(doc: dict[str, Any]) -> None:
    resources = doc["resource"]["azapi_resource"]
    for lid in [lid for lid, body in resources.items() if body["type"].startswith(AUTH_CONFIG)]:
        del resources[lid]


SIGN_IN_BREAKS: dict[str, Callable[[dict[str, Any]], None]] = {
    "no auth config": _drop_auth_config,
    "auth config on another app": lambda doc: _auth_body(doc).update(parent_id="${azapi_resource.other.id}"),
    "platform disabled": lambda doc: _auth_body(doc)["body"]["properties"]["platform"].update(enabled=False),
    "anonymous allowed": lambda doc: _auth_body(doc)["body"]["properties"]["globalValidation"].update(
        unauthenticatedClientAction="AllowAnonymous"
    ),
    "any tenant (common)": lambda doc: _entra_in(doc)["registration"].update(
        openIdIssuer="https://login.microsoftonline.com/common/v2.0"
    ),
    "no tenant": lambda doc: _entra_in(doc)["registration"].pop("openIdIssuer"),
    "Entra ID disabled": lambda doc: _entra_in(doc).update(enabled=False),
    "another provider": lambda doc: _auth_body(doc)["body"]["properties"]["identityProviders"].update(
        gitHub={"enabled": True}
    ),
    "literal client secret": lambda doc: _app_in(doc)["secret"][0].update(value="not-a-reference"),
    "secret setting names no app secret": lambda doc: _entra_in(doc)["registration"].update(
        clientSecretSettingName="missing"
    ),
}


def test_every_internet_facing_stack_requires_entra_sign_in_in_the_tenant(stack: SynthesizedStack) -> None:
    assert _public_apps(stack), "the dashboard is expected to be internet-facing"
    assert sign_in_violations(stack) == []
    declared = set(SIGN_IN_VARIABLES) & set(stack.doc["variable"])
    assert ("dashboard_viewer_group_id" in declared) == stack.config.dashboard.viewer_group
    assert {"dashboard_auth_client_id", "dashboard_auth_client_secret"} <= declared
    assert stack.doc["variable"]["dashboard_auth_client_secret"]["sensitive"] is True


@pytest.mark.parametrize("env", ["staging", "prod"])
def test_no_environment_but_dev_serves_the_dashboard_without_sign_in(
    synthesized: dict[str, SynthesizedStack], env: str
) -> None:
    stack = synthesized[env]
    assert not stack.config.dashboard.public
    assert _the_auth_config(stack)
    assert sign_in_violations(stack) == []


@pytest.mark.parametrize("mutation", sorted(SIGN_IN_BREAKS))
def test_sign_in_rule_rejects(synthesized: dict[str, SynthesizedStack], mutation: str) -> None:
    for env in ("staging", "prod"):
        assert sign_in_violations(_broken(synthesized[env], SIGN_IN_BREAKS[mutation])), (env, mutation)


def test_no_ingress_without_sign_in_unless_the_config_opts_out(stack: SynthesizedStack) -> None:
    assert opt_out_violations(stack) == []


def test_a_dev_that_opts_out_serves_the_dashboard_without_sign_in_and_warns(
    public_dev: SynthesizedStack,
) -> None:
    assert opt_out_violations(public_dev) == []
    assert public_dev.config.dashboard.public
    assert _public_apps(public_dev)
    assert not public_dev.arm_resources(AUTH_CONFIG)
    assert not set(SIGN_IN_VARIABLES) & set(public_dev.doc["variable"])
    assert "secret" not in _app_in(public_dev.doc)


def test_opt_out_rule_rejects(synthesized: dict[str, SynthesizedStack], public_dev: SynthesizedStack) -> None:
    dev, staging = synthesized["dev"], synthesized["staging"]
    # A stack that lost its auth config while its config still asks for sign-in.
    assert opt_out_violations(_broken(dev, _drop_auth_config))
    # A public dev whose plan does not warn.
    assert opt_out_violations(_broken(public_dev, lambda doc: doc.pop("check")))
    # A staging whose config opts out (the config model refuses it; this copy skipped the validation).
    unvalidated = staging.config.model_copy(
        update={"dashboard": staging.config.dashboard.model_copy(update={"public": True})}
    )
    public_staging = dataclasses.replace(_broken(staging, _drop_auth_config), config=unvalidated)
    assert any("only dev may" in p for p in opt_out_violations(public_staging))


def test_only_dev_may_opt_out_of_sign_in() -> None:
    for env, config in ENVIRONMENTS.items():
        dashboard = config.dashboard.model_dump() | {"public": True, "viewer_group": False}
        opted_out = config.model_dump() | {"dashboard": dashboard}
        if env == "dev":
            assert EnvConfig.model_validate(opted_out).dashboard.public
        else:
            with pytest.raises(ValidationError, match=f"dashboard.public is refused for {env}: only dev"):
                EnvConfig.model_validate(opted_out)
    assert not any(config.dashboard.public for config in ENVIRONMENTS.values()), "every stack signs in today"
    with pytest.raises(ValidationError, match="cannot admit only a viewer group"):
        DashboardConfig(cpu=0.5, memory="1Gi", min_replicas=0, max_replicas=1, public=True, viewer_group=True)


def test_probes_and_the_health_path_need_no_token(stack: SynthesizedStack) -> None:
    assert health_path_violations(stack) == []


@pytest.mark.parametrize("mutation", ["root excluded", "health not excluded", "probe elsewhere"])
def test_health_path_rule_rejects(stack: SynthesizedStack, mutation: str) -> None:
    def mutate(doc: dict[str, Any]) -> None:
        validation = _auth_body(doc)["body"]["properties"]["globalValidation"]
        if mutation == "root excluded":
            validation["excludedPaths"].append("/")
        elif mutation == "health not excluded":
            validation["excludedPaths"] = []
        else:
            _app_in(doc)["template"]["container"][0]["liveness_probe"][0]["path"] = "/"

    assert health_path_violations(_broken(stack, mutate))


def test_a_configured_viewer_group_is_the_only_one_admitted(stack: SynthesizedStack) -> None:
    assert viewer_group_violations(stack) == []


def test_viewer_group_rule_rejects(synthesized: dict[str, SynthesizedStack]) -> None:
    prod, staging = synthesized["prod"], synthesized["staging"]
    assert prod.config.dashboard.viewer_group
    assert not staging.config.dashboard.viewer_group
    assert viewer_group_violations(_broken(prod, lambda doc: _entra_in(doc).pop("validation")))
    another = {"defaultAuthorizationPolicy": {"allowedPrincipals": {"groups": ["${var.other}"]}}}
    assert viewer_group_violations(_broken(prod, lambda doc: _entra_in(doc).update(validation=another)))
    assert viewer_group_violations(_broken(staging, lambda doc: _entra_in(doc).update(validation=another)))
