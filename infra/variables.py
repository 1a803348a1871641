"""The inputs a deployer provides per stack: credentials as sensitive variables, never as literals."""

from __future__ import annotations

from dataclasses import dataclass

from cdktf import TerraformStack, TerraformVariable, TerraformVariableValidationConfig

from infra.config import DashboardConfig

SENSITIVE_VARIABLES = ("confluent_cloud_api_key", "confluent_cloud_api_secret")
# Declared only where the dashboard signs users in (and the secret is then sensitive like the above).
SIGN_IN_VARIABLES = ("dashboard_auth_client_id", "dashboard_auth_client_secret", "dashboard_viewer_group_id")
GUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


@dataclass(frozen=True)
class SignInInputs:
    """What the dashboard's Entra ID sign-in needs from the bootstrap (docs/infra.md, "Who can open the
    dashboard"): the app registration, its client secret, and the viewer group where one is configured.

    Attributes:
        client_id: Token of the app registration's client (application) id.
        client_secret: Token of its client secret (a sensitive variable, never a literal).
        viewer_group_id: Token of the viewer group's object id, or None where the whole tenant is admitted.
    """

    client_id: str
    client_secret: str
    viewer_group_id: str | None


class StackInputs:
    """Terraform variables of one stack, declared at stack level so each keeps its plain ``TF_VAR_`` name.

    Attributes:
        confluent_cloud_api_key: Confluent Cloud API key (sensitive).
        confluent_cloud_api_secret: Confluent Cloud API secret (sensitive).
        dashboard_image: Container image of the dashboard, e.g. ``ghcr.io/org/pulse-dashboard:1.2.3``.
        pulse_wheel_uri: Where the pipeline wheel was uploaded, e.g. a Unity Catalog volume path.
        pulse_engine_jar_uri: Where the keyed engine's operator jar was uploaded, beside the wheel; None
            where the environment runs the driver engine (no variable is declared).
        alert_emails: Who is mailed when a Databricks job fails.
        operator_ip_ranges: CIDRs allowed through the Key Vault firewall (the deployer's egress).
        azure_databricks_sp_object_id: Object id of the ``AzureDatabricks`` enterprise app in the tenant.
        deployer_application_id: Client (application) id of the environment's deploy identity: the only
            writer of the artifacts volume and the one allowed to run the jobs as their service principal.
            A variable, not the identity Terraform runs as, so the plan names the identity that applies.
        databricks_account_id: The Azure Databricks account id (account console), which names the jobs'
            service principal's rule set.
        dashboard_sign_in: The dashboard's sign-in inputs, or None where the config serves it publicly.
    """

    def __init__(
        self, stack: TerraformStack, *, wheels_dir: str, dashboard: DashboardConfig, engine_jar: bool = False
    ) -> None:
        """Declares the variables.

        Args:
            stack: The environment's stack.
            wheels_dir: The only folder a wheel may be installed from (the deployer-only artifacts volume).
            dashboard: The dashboard's config: whether it signs users in, and whether a group restricts them.
            engine_jar: Whether the pipeline's tasks install the keyed engine's jar (``engine='keyed'``).
        """
        self._stack = stack
        self.confluent_cloud_api_key = self._sensitive(
            "confluent_cloud_api_key", "Confluent Cloud API key (Cloud resource management)."
        )
        self.confluent_cloud_api_secret = self._sensitive(
            "confluent_cloud_api_secret", "Confluent Cloud API secret (Cloud resource management)."
        )
        self.dashboard_image = self._plain(
            "dashboard_image", "Dashboard container image, built once and promoted across environments."
        ).string_value
        self.pulse_wheel_uri = self._artifact("pulse_wheel_uri", "The pulse wheel", ".whl", wheels_dir)
        self.pulse_engine_jar_uri = (
            self._artifact("pulse_engine_jar_uri", "The keyed engine's operator jar", ".jar", wheels_dir)
            if engine_jar
            else None
        )
        self.alert_emails = self._plain(
            "alert_emails", "E-mail addresses alerted when a Databricks job fails.", type="list(string)"
        ).list_value
        self.operator_ip_ranges = self._plain(
            "operator_ip_ranges",
            "CIDR ranges allowed through the Key Vault firewall (where terraform runs).",
            type="list(string)",
            default=[],
        ).list_value
        self.azure_databricks_sp_object_id = self._plain(
            "azure_databricks_sp_object_id",
            "Object id of the AzureDatabricks service principal (reads the Key Vault-backed secret scope).",
        ).string_value
        self.deployer_application_id = self._guid(
            "deployer_application_id",
            "Client id of the environment's deploy identity (AZURE_CLIENT_ID of its GitHub environment).",
        )
        self.databricks_account_id = self._guid(
            "databricks_account_id", "Azure Databricks account id (account console, top right)."
        )
        self.dashboard_sign_in = self._sign_in(dashboard) if dashboard.sign_in else None

    def _artifact(self, name: str, what: str, suffix: str, wheels_dir: str) -> str:
        """A file the jobs install, which only the deployer can write: anywhere else, any workspace user
        could replace it and run it with the Kafka secrets."""
        return TerraformVariable(
            self._stack,
            name,
            type="string",
            nullable=False,
            description=f"{what} in the deployer-only volume: {wheels_dir}/<commit>/<file>{suffix}.",
            validation=[
                TerraformVariableValidationConfig(
                    condition=(
                        f'${{startswith(var.{name}, "{wheels_dir}/") && '
                        f'endswith(var.{name}, "{suffix}") && !strcontains(var.{name}, "..")}}'
                    ),
                    error_message=f"{name} must be a {suffix} under {wheels_dir}/ (deployer-only).",
                )
            ],
        ).string_value

    def _sign_in(self, dashboard: DashboardConfig) -> SignInInputs:
        app_registration = "the dashboard's sign-in app registration (bootstrap, docs/infra.md)"
        group = "Object id of the Entra ID group whose members may open the dashboard."
        return SignInInputs(
            client_id=self._guid("dashboard_auth_client_id", f"Client id of {app_registration}."),
            # An empty GitHub secret would give a dashboard nobody can sign in to: refuse it at plan time.
            client_secret=self._sensitive(
                "dashboard_auth_client_secret", f"Client secret of {app_registration}.", non_empty=True
            ),
            viewer_group_id=self._guid("dashboard_viewer_group_id", group)
            if dashboard.viewer_group
            else None,
        )

    def _guid(self, name: str, description: str) -> str:
        return TerraformVariable(
            self._stack,
            name,
            type="string",
            description=description,
            nullable=False,
            validation=[
                TerraformVariableValidationConfig(
                    condition=f'${{can(regex("{GUID_PATTERN}", var.{name}))}}',
                    error_message=f"{name} must be a GUID (xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx).",
                )
            ],
        ).string_value

    def _plain(
        self, name: str, description: str, *, type: str = "string", default: object = None
    ) -> TerraformVariable:
        return TerraformVariable(
            self._stack, name, type=type, description=description, default=default, nullable=False
        )

    def _sensitive(self, name: str, description: str, *, non_empty: bool = False) -> str:
        validation = [
            TerraformVariableValidationConfig(
                condition=f"${{length(var.{name}) > 0}}",
                error_message=f"{name} is empty: set it in the environment's secrets.",
            )
        ]
        return TerraformVariable(
            self._stack,
            name,
            type="string",
            sensitive=True,
            nullable=False,
            description=description,
            validation=validation if non_empty else None,
        ).string_value
