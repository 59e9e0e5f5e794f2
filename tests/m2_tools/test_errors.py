"""The error tree: contract codes and retryability."""

from __future__ import annotations

import json

import pytest

from m2_tools import errors

CONTRACT = {
    "invalid_argument": False,
    "image_not_found": False,
    "image_not_allowed": False,
    "image_unsupported": False,
    "image_too_large": False,
    "url_not_allowed": False,
    "url_fetch_failed": True,
    "model_loading": True,
    "model_unavailable": False,
    "busy": True,
    "timeout": True,
    "cancelled": False,
    "internal": False,
}


def _leaf_classes() -> list[type[errors.M2Error]]:
    return [
        errors.InvalidArgument,
        errors.ImageNotFound,
        errors.ImageNotAllowed,
        errors.ImageUnsupported,
        errors.ImageTooLarge,
        errors.UrlNotAllowed,
        errors.UrlFetchFailed,
        errors.ModelLoading,
        errors.ModelUnavailable,
        errors.Busy,
        errors.RequestTimeout,
        errors.Cancelled,
        errors.InternalError,
    ]


def test_every_contract_code_has_one_class_with_its_retryability() -> None:
    table = {cls.code: cls.retryable for cls in _leaf_classes()}

    assert table == CONTRACT


@pytest.mark.parametrize("cls", _leaf_classes())
def test_payload_is_the_contract_json(cls: type[errors.M2Error]) -> None:
    error = cls("change this")

    payload = json.loads(error.to_json())

    assert payload == {
        "error": {"code": cls.code, "message": "change this", "retryable": cls.retryable}
    }
    assert type(errors.error_from_payload(payload)) is cls


def test_unknown_payload_code_becomes_internal() -> None:
    rebuilt = errors.error_from_payload({"error": {"code": "nope", "message": "m"}})

    assert isinstance(rebuilt, errors.InternalError)
