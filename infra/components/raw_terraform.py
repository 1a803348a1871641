"""Typed blocks of Terraform providers that have no pinned cdktf bindings (azapi, Confluent, time).

Each block subclasses ``TerraformProvider``/``TerraformResource``/``TerraformDataSource`` and overrides
``_synthesize_attributes`` (with the underscore: jsii calls that one; a method without it is never called
and the block synthesizes as ``{}``). A subclass names its provider or resource type in class attributes
and passes its arguments as one mapping, which synthesizes verbatim.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol, overload

from cdktf import (
    ITerraformDependable,
    TerraformDataSource,
    TerraformProvider,
    TerraformProviderGeneratorMetadata,
    TerraformResource,
    TerraformResourceLifecycle,
)
from constructs import Construct


class RawProvider(TerraformProvider):
    """A provider block: ``NAME`` from ``SOURCE`` at ``VERSION``, configured with ``attributes``."""

    NAME: ClassVar[str]
    SOURCE: ClassVar[str]
    VERSION: ClassVar[str]

    def __init__(self, scope: Construct, id: str, attributes: Mapping[str, Any] | None = None) -> None:
        super().__init__(
            scope,
            id,
            terraform_resource_type=self.NAME,
            terraform_generator_metadata=TerraformProviderGeneratorMetadata(
                provider_name=self.NAME, provider_version_constraint=self.VERSION
            ),
            terraform_provider_source=self.SOURCE,
        )
        self._attributes = dict(attributes or {})

    def _synthesize_attributes(self) -> Mapping[str, Any]:
        return self._attributes


class RawResource(TerraformResource):
    """A resource of type ``TF_TYPE`` whose ``attributes`` synthesize verbatim."""

    TF_TYPE: ClassVar[str]

    def __init__(
        self,
        scope: Construct,
        id: str,
        attributes: Mapping[str, Any],
        *,
        depends_on: Sequence[ITerraformDependable] | None = None,
        lifecycle: TerraformResourceLifecycle | None = None,
    ) -> None:
        super().__init__(
            scope,
            id,
            terraform_resource_type=self.TF_TYPE,
            depends_on=list(depends_on) if depends_on else None,
            lifecycle=lifecycle,
        )
        self._attributes = dict(attributes)

    def _synthesize_attributes(self) -> Mapping[str, Any]:
        return self._attributes


class RawDataSource(TerraformDataSource):
    """A data source of type ``TF_TYPE`` that looks an existing object up by ``attributes``."""

    TF_TYPE: ClassVar[str]

    def __init__(self, scope: Construct, id: str, attributes: Mapping[str, Any]) -> None:
        super().__init__(scope, id, terraform_resource_type=self.TF_TYPE)
        self._attributes = dict(attributes)

    def _synthesize_attributes(self) -> Mapping[str, Any]:
        return self._attributes


class _HasAttributes(Protocol):
    def get_string_attribute(self, terraform_attribute: str) -> str: ...


class TokenAttribute:
    """A read-only attribute of a raw block: the token of one of its Terraform attributes.

    Args:
        attribute: The Terraform attribute, e.g. ``rest_endpoint``.
        doc: What the token stands for.
    """

    def __init__(self, attribute: str, doc: str) -> None:
        self.attribute = attribute
        self.__doc__ = doc

    @overload
    def __get__(self, obj: None, owner: type) -> TokenAttribute: ...

    @overload
    def __get__(self, obj: _HasAttributes, owner: type) -> str: ...

    def __get__(self, obj: _HasAttributes | None, owner: type) -> TokenAttribute | str:
        if obj is None:
            return self
        return obj.get_string_attribute(self.attribute)
