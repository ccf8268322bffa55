"""The few Prometheus remote-write protobuf messages, built at import time from
descriptors written here (no protoc, no download): WriteRequest, TimeSeries,
Label, Sample, as in prometheus/prompb/types.proto and remote.proto (v1); and
RawWriteRequest, the same wire format with each label left as its encoded bytes (a
cache key for the series: decoding labels into Python strings costs more than all
else a sample takes).
Exemplars, native histograms and metadata are not declared, so the parser skips
them as unknown fields."""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

_F = descriptor_pb2.FieldDescriptorProto


def _file() -> descriptor_pb2.FileDescriptorProto:
    f = descriptor_pb2.FileDescriptorProto(name="tocsin_prompb.proto", package="tocsin.prompb",
                                           syntax="proto3")  # fmt: skip

    def message(name: str, *fields: tuple[str, int, int, str | None, bool]) -> None:
        m = f.message_type.add(name=name)
        for fname, number, ftype, type_name, repeated in fields:
            label = _F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL
            fd = m.field.add(name=fname, number=number, type=ftype, label=label)
            if type_name:
                fd.type_name = f".tocsin.prompb.{type_name}"

    message("Label", ("name", 1, _F.TYPE_STRING, None, False),
            ("value", 2, _F.TYPE_STRING, None, False))  # fmt: skip
    message("Sample", ("value", 1, _F.TYPE_DOUBLE, None, False),
            ("timestamp", 2, _F.TYPE_INT64, None, False))  # fmt: skip
    message("TimeSeries", ("labels", 1, _F.TYPE_MESSAGE, "Label", True),
            ("samples", 2, _F.TYPE_MESSAGE, "Sample", True))  # fmt: skip
    message("WriteRequest", ("timeseries", 1, _F.TYPE_MESSAGE, "TimeSeries", True))
    message("RawTimeSeries", ("labels", 1, _F.TYPE_BYTES, None, True),
            ("samples", 2, _F.TYPE_MESSAGE, "Sample", True))  # fmt: skip
    message("RawWriteRequest", ("timeseries", 1, _F.TYPE_MESSAGE, "RawTimeSeries", True))
    return f


_pool = descriptor_pool.DescriptorPool()
_pool.Add(_file())
WriteRequest: Any = message_factory.GetMessageClass(
    _pool.FindMessageTypeByName("tocsin.prompb.WriteRequest")
)
RawWriteRequest: Any = message_factory.GetMessageClass(
    _pool.FindMessageTypeByName("tocsin.prompb.RawWriteRequest")
)
Label: Any = message_factory.GetMessageClass(_pool.FindMessageTypeByName("tocsin.prompb.Label"))
