"""Property tests: every generated name meets its Azure rule for any input within the documented bounds."""

from __future__ import annotations

import re
import string

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from infra.config import ENVIRONMENTS
from infra.naming import RULES, SUFFIX_LENGTH, Namer, NameRule, ResourceKind

LETTERS = string.ascii_lowercase
ALPHANUMERIC = LETTERS + string.digits


@st.composite
def hyphenated(draw: st.DrawFn, max_size: int) -> str:
    """A name part within the documented bounds, drawn across the whole length range."""
    size = draw(st.integers(min_value=1, max_value=max_size))
    chars = [draw(st.sampled_from(LETTERS))]
    chars += draw(st.lists(st.sampled_from(ALPHANUMERIC + "-"), min_size=size - 1, max_size=size - 1))
    for i in range(1, size):
        if chars[i] == "-" and (chars[i - 1] == "-" or i == size - 1):
            chars[i] = "x"
    return "".join(chars)


prefixes = hyphenated(12)
envs = st.builds(
    lambda first, rest: first + rest,
    st.sampled_from(LETTERS),
    st.text(alphabet=ALPHANUMERIC, min_size=1, max_size=7),
)
components = hyphenated(16)
seeds = st.text(min_size=0, max_size=40)

# Independent restatement of the Azure rules, so a wrong entry in RULES cannot vouch for itself.
AZURE_RULES: dict[ResourceKind, tuple[int, int, str]] = {
    ResourceKind.RESOURCE_GROUP: (1, 90, r"[\w.()-]*[\w()-]"),
    ResourceKind.STORAGE_ACCOUNT: (3, 24, r"[a-z0-9]+"),
    ResourceKind.KEY_VAULT: (3, 24, r"[a-zA-Z](?:[a-zA-Z0-9]|-(?!-))*[a-zA-Z0-9]"),
    ResourceKind.LOG_ANALYTICS: (4, 63, r"[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]"),
    ResourceKind.VIRTUAL_NETWORK: (2, 64, r"[a-zA-Z0-9][\w.-]*\w"),
    ResourceKind.SUBNET: (1, 80, r"[a-zA-Z0-9](?:[\w.-]*\w)?"),
    ResourceKind.NETWORK_SECURITY_GROUP: (1, 80, r"[a-zA-Z0-9](?:[\w.-]*\w)?"),
    ResourceKind.PRIVATE_ENDPOINT: (2, 64, r"[a-zA-Z0-9][\w.-]*\w"),
    ResourceKind.CONTAINER_APP_ENVIRONMENT: (2, 60, r"[a-z](?:[a-z0-9]|-(?!-))*[a-z0-9]"),
    ResourceKind.CONTAINER_APP: (2, 32, r"[a-z](?:[a-z0-9]|-(?!-))*[a-z0-9]"),
    ResourceKind.DATABRICKS_WORKSPACE: (3, 64, r"[\w-]+"),
    ResourceKind.DATABRICKS_ACCESS_CONNECTOR: (3, 64, r"[\w-]+"),
    ResourceKind.DISPLAY_NAME: (1, 64, r"[a-z](?:[a-z0-9-]*[a-z0-9])?"),
}


def test_every_kind_has_a_rule() -> None:
    assert set(RULES) == set(ResourceKind) == set(AZURE_RULES)


@pytest.mark.parametrize("kind", list(ResourceKind))
@settings(max_examples=200, deadline=None)
@given(prefix=prefixes, env=envs, component=components, seed=seeds)
@example(prefix="p" * 12, env="e" * 8, component="c" * 16, seed="")
@example(prefix="p", env="ev", component="c", seed="")
def test_generated_names_meet_azure_rules(
    kind: ResourceKind, prefix: str, env: str, component: str, seed: str
) -> None:
    name = Namer(prefix, env, seed).name(kind, component)
    low, high, pattern = AZURE_RULES[kind]
    assert low <= len(name) <= high
    assert re.fullmatch(pattern, name), name
    assert RULES[kind].is_valid(name)


@settings(max_examples=200, deadline=None)
@given(prefix=prefixes, env=envs, component=components, seed=seeds)
def test_global_names_keep_env_and_unique_suffix(prefix: str, env: str, component: str, seed: str) -> None:
    namer = Namer(prefix, env, seed)
    assert re.fullmatch(rf"[0-9a-f]{{{SUFFIX_LENGTH}}}", namer.suffix)
    for kind in (ResourceKind.STORAGE_ACCOUNT, ResourceKind.KEY_VAULT):
        assert namer.name(kind, component).endswith(env + RULES[kind].separator + namer.suffix)


@settings(max_examples=100, deadline=None)
@given(prefix=prefixes, env=envs, seed=seeds)
def test_names_are_deterministic_and_seed_sensitive(prefix: str, env: str, seed: str) -> None:
    first = Namer(prefix, env, seed).name(ResourceKind.STORAGE_ACCOUNT, "lake")
    assert first == Namer(prefix, env, seed).name(ResourceKind.STORAGE_ACCOUNT, "lake")
    other_seed = Namer(prefix, env, seed + "x").name(ResourceKind.STORAGE_ACCOUNT, "lake")
    assert first != other_seed


def test_short_names_follow_the_house_pattern() -> None:
    namer = Namer("pulse", "dev", "seed")
    assert namer.name(ResourceKind.CONTAINER_APP, "dashboard") == "pulse-dashboard-dev"
    assert namer.name(ResourceKind.RESOURCE_GROUP, "rg") == "pulse-rg-dev"
    assert namer.name(ResourceKind.STORAGE_ACCOUNT, "lake") == f"pulselakedev{namer.suffix}"
    assert namer.name(ResourceKind.KEY_VAULT, "kv") == f"pulse-kv-dev-{namer.suffix}"


def test_long_inputs_are_shortened_not_rejected() -> None:
    namer = Namer("abcdefghijkl", "staging", "seed")
    name = namer.name(ResourceKind.CONTAINER_APP, "abcdefghijklmnop")
    assert len(name) == 32
    assert name.endswith("-staging")


@pytest.mark.parametrize(
    ("prefix", "env", "component"),
    [
        ("Pulse", "dev", "lake"),  # uppercase
        ("1pulse", "dev", "lake"),  # starts with a digit
        ("pulse-", "dev", "lake"),  # trailing hyphen
        ("pu--lse", "dev", "lake"),  # double hyphen
        ("abcdefghijklm", "dev", "lake"),  # 13 characters
        ("pulse", "d", "lake"),  # env too short
        ("pulse", "dev-1", "lake"),  # hyphen in env
        ("pulse", "dev", "lake_1"),  # underscore in component
        ("pulse", "dev", "abcdefghijklmnopq"),  # 17 characters
    ],
)
def test_inputs_outside_the_bounds_are_rejected(prefix: str, env: str, component: str) -> None:
    with pytest.raises(ValueError, match="outside the documented bounds"):
        Namer(prefix, env, "seed").name(ResourceKind.STORAGE_ACCOUNT, component)


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        (ResourceKind.STORAGE_ACCOUNT, "pulse-lake"),
        (ResourceKind.STORAGE_ACCOUNT, "ab"),
        (ResourceKind.STORAGE_ACCOUNT, "a" * 25),
        (ResourceKind.KEY_VAULT, "1pulse-kv"),
        (ResourceKind.KEY_VAULT, "pulse--kv"),
        (ResourceKind.KEY_VAULT, "pulse-kv-"),
        (ResourceKind.CONTAINER_APP, "Pulse-dashboard"),
        (ResourceKind.CONTAINER_APP, "p" * 33),
        (ResourceKind.LOG_ANALYTICS, "abc"),
    ],
)
def test_rules_reject_invalid_names(kind: ResourceKind, name: str) -> None:
    rule: NameRule = RULES[kind]
    assert not rule.is_valid(name)


@pytest.mark.parametrize("env", list(ENVIRONMENTS))
def test_configured_environments_produce_valid_names(env: str) -> None:
    namer = ENVIRONMENTS[env].namer
    for kind in ResourceKind:
        assert RULES[kind].is_valid(namer.name(kind, "component"))
