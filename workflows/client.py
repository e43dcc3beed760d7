"""Typed client helpers: the data converter used by every Client, Worker and
Replayer, and connecting with the engine's settings."""

from __future__ import annotations

import dataclasses
from typing import Any

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, PayloadCodec

_codec: PayloadCodec | None = None


def set_payload_codec(codec: PayloadCodec | None) -> None:
    """Install a payload codec (e.g. encryption) for every converter made afterwards."""
    global _codec
    _codec = codec


def data_converter() -> DataConverter:
    if _codec is None:
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=_codec)


async def connect(address: str, namespace: str = "default", **kwargs: Any) -> Any:
    from temporalio.client import Client

    return await Client.connect(
        address, namespace=namespace, data_converter=data_converter(), **kwargs
    )
