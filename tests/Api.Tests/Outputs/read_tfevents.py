#!/usr/bin/env python3
"""Reads a TensorBoard event file with nothing of the service's: the TFRecord framing here, each length and record
checked against its masked CRC-32C computed by crcmod (Debian's python3-crcmod), and each record decoded as an Event by
Google's protobuf runtime (python3-protobuf) from a schema written here from TensorFlow's event.proto, summary.proto and
histogram.proto. Prints JSON: {"version", "records", "scalars": [[step, tag, value]], "histograms": [{...}]};
exits 1 with the reason on the first bad record."""
import json
import math
import struct
import sys

import crcmod.predefined
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

F = descriptor_pb2.FieldDescriptorProto
crc32c = crcmod.predefined.mkCrcFun("crc-32c")


def masked(data):
    crc = crc32c(data)
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def schema():
    f = descriptor_pb2.FileDescriptorProto(name="tfevents_reader.proto", package="reader", syntax="proto3")
    h = f.message_type.add(name="HistogramProto")
    for number, name in enumerate(["min", "max", "num", "sum", "sum_squares"], 1):
        h.field.add(name=name, number=number, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    h.field.add(name="bucket_limit", number=6, type=F.TYPE_DOUBLE, label=F.LABEL_REPEATED)
    h.field.add(name="bucket", number=7, type=F.TYPE_DOUBLE, label=F.LABEL_REPEATED)
    s = f.message_type.add(name="Summary")
    v = s.nested_type.add(name="Value")
    v.oneof_decl.add(name="value")
    v.field.add(name="tag", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    v.field.add(name="simple_value", number=2, type=F.TYPE_FLOAT, label=F.LABEL_OPTIONAL, oneof_index=0)
    v.field.add(name="histo", number=5, type=F.TYPE_MESSAGE, type_name=".reader.HistogramProto", label=F.LABEL_OPTIONAL, oneof_index=0)
    s.field.add(name="value", number=1, type=F.TYPE_MESSAGE, type_name=".reader.Summary.Value", label=F.LABEL_REPEATED)
    e = f.message_type.add(name="Event")
    e.oneof_decl.add(name="what")
    e.field.add(name="wall_time", number=1, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    e.field.add(name="step", number=2, type=F.TYPE_INT64, label=F.LABEL_OPTIONAL)
    e.field.add(name="file_version", number=3, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL, oneof_index=0)
    e.field.add(name="summary", number=5, type=F.TYPE_MESSAGE, type_name=".reader.Summary", label=F.LABEL_OPTIONAL, oneof_index=0)
    pool = descriptor_pool.DescriptorPool()
    pool.Add(f)
    descriptor = pool.FindMessageTypeByName("reader.Event")
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(descriptor)
    return message_factory.MessageFactory(pool).GetPrototype(descriptor)


def number(x):
    return x if math.isfinite(x) else str(x)


def main(path):
    Event = schema()
    data = open(path, "rb").read()
    out = {"version": None, "records": 0, "scalars": [], "histograms": []}
    pos = 0
    while pos < len(data):
        if len(data) - pos < 12:
            sys.exit(f"record {out['records']}: {len(data) - pos} bytes left, too few for a header")
        header = data[pos:pos + 8]
        (length,) = struct.unpack("<Q", header)
        (length_crc,) = struct.unpack("<I", data[pos + 8:pos + 12])
        if masked(header) != length_crc:
            sys.exit(f"record {out['records']}: the length's CRC does not match")
        end = pos + 12 + length
        if end + 4 > len(data):
            sys.exit(f"record {out['records']}: cut short")
        body = data[pos + 12:end]
        (body_crc,) = struct.unpack("<I", data[end:end + 4])
        if masked(body) != body_crc:
            sys.exit(f"record {out['records']}: the data's CRC does not match")
        event = Event()
        event.ParseFromString(body)
        which = event.WhichOneof("what")
        if which == "file_version":
            out["version"] = event.file_version
        elif which == "summary":
            for value in event.summary.value:
                kind = value.WhichOneof("value")
                if kind == "simple_value":
                    out["scalars"].append([event.step, value.tag, number(value.simple_value)])
                elif kind == "histo":
                    h = value.histo
                    out["histograms"].append({"step": event.step, "tag": value.tag, "min": h.min, "max": h.max, "num": h.num,
                                              "sum": h.sum, "sumSquares": h.sum_squares,
                                              "limits": list(h.bucket_limit), "counts": list(h.bucket)})
        out["records"] += 1
        pos = end + 4
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main(sys.argv[1])
