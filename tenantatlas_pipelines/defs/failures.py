"""A step failure that explains itself in words and carries no stack trace.

Why: a sync that fails because a tenant has no Intune licence, or a credential is missing, is not a bug.
Dagster records a raised `Failure` with the stack of its own executor frames, and the UI prints that
under the description, so a data engineer reads ten frames of Dagster internals where one sentence
says what happened and what to do. Dagster 1.13 has no switch for this. It does record an error that
arrived already serialized (from another process) as it is: `serializable_error_info_from_exc_info`
hoists the single `SerializableErrorInfo` of a `DagsterUserCodeProcessError`. `ExplainedFailure` is a
`Failure` (so the step failure keeps its description and metadata) and carries one such record: the
explanation, with an empty stack. Real bugs still raise ordinary exceptions and keep their traces.
tests/test_dagster_ui.py pins the behaviour (GraphQL: the failure's message is the explanation, its
stack is empty), so a Dagster upgrade that changes it fails a test instead of silently regressing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import Failure
from dagster._core.errors import DagsterUserCodeProcessError
from dagster._utils.error import SerializableErrorInfo

# The class name the UI shows in front of the message.
DISPLAY_NAME = "TenantAtlasFailure"


class ExplainedFailure(Failure, DagsterUserCodeProcessError):
    """An expected failure (bad input, unlicensed tenant, Graph refusing): description, no stack."""

    def __init__(self, description: str, metadata: Mapping[str, Any] | None = None) -> None:
        # Not Failure.__init__: its super() call would reach DagsterUserCodeProcessError's __init__,
        # which wants other arguments. A plain Failure normalises description and metadata for us.
        Exception.__init__(self, description)
        plain = Failure(description=description, metadata=metadata)
        self.description, self.metadata, self.allow_retries = plain.description, plain.metadata, True
        self.user_code_process_error_infos = [
            SerializableErrorInfo(message=description + "\n", stack=[], cls_name=DISPLAY_NAME)
        ]

    def __reduce__(self):  # pickles like a Failure (multiprocess executors, retries)
        return (type(self), (self.description, self.metadata))
