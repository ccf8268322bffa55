"""NAB's HTM detector (`nab/detectors/numenta`) on one NAB file, under Python 2.7 and NuPIC.

Not imported by tocsin: `benchmarks.nab_online_reference --htm PYTHON2` installs NuPIC
1.0.5 for a Python 2.7 interpreter and runs this file with it, once per NAB file and mode:

- `file-range`: as NAB runs it, the value encoder's resolution set from the whole file's
  minimum and maximum (padded by a fifth), known before the first row;
- `warm-up-range`: the same from the minimum and maximum of the file's probation period
  only; the rows of that period score 0 (NAB does not score them), so no reported score
  depends on a row that had not arrived.

A row without a value (NaN, in corpora other than NAB's) scores 0 and is not shown to
the model, as tocsin's detector skips it.

Everything else is NAB's detector, adapted below (its licence with it): the model
parameters, the anomaly likelihood and the spatial anomaly.

Usage: PYTHON2 nab_htm_py2.py MODE DATA.csv RESULT.csv   (NUPIC_SITE: NuPIC's folder)
"""

# The detector's code below is adapted from github.com/numenta/NAB
# (nab/detectors/numenta/nab/detectors/numenta/numenta_detector.py), under this licence:
#
# Copyright 2014-2024 Numenta Inc.
#
# Permission is hereby granted, free of charge, to any person obtaining a copy
# of this software and associated documentation files (the "Software"), to deal
# in the Software without restriction, including without limitation the rights
# to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
# copies of the Software, and to permit persons to whom the Software is
# furnished to do so, subject to the following conditions:
#
# The above copyright notice and this permission notice shall be included in all
# copies or substantial portions of the Software.
#
# THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
# IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
# FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
# AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
# LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
# OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
# SOFTWARE.

import csv
import datetime
import math
import os
import site
import sys

site.addsitedir(os.environ.get("NUPIC_SITE", "/tmp/tocsin-nab-online/py2"))

from nupic.algorithms import anomaly_likelihood
from nupic.frameworks.opf.common_models.cluster_params import (
    getScalarMetricWithTimeOfDayAnomalyParams,
)
from nupic.frameworks.opf.model_factory import ModelFactory

SPATIAL_TOLERANCE = 0.05


def probation(rows):
    return min(math.floor(0.15 * rows), 0.15 * 5000)


def model_for(lo, hi):
    pad = abs(hi - lo) * 0.2
    params = getScalarMetricWithTimeOfDayAnomalyParams(
        metricData=[0],
        minVal=lo - pad,
        maxVal=hi + pad,
        minResolution=0.001,
        tmImplementation="cpp",
    )["modelConfig"]
    encoders = params["modelParams"]["sensorParams"]["encoders"]
    encoders["timestamp_dayOfWeek"] = encoders.pop("c0_dayOfWeek")
    encoders["timestamp_timeOfDay"] = encoders.pop("c0_timeOfDay")
    encoders["timestamp_timeOfDay"]["fieldname"] = "timestamp"
    encoders["timestamp_timeOfDay"]["name"] = "timestamp"
    encoders["timestamp_weekend"] = encoders.pop("c0_weekend")
    encoders["value"] = encoders.pop("c1")
    encoders["value"]["fieldname"] = "value"
    encoders["value"]["name"] = "value"
    model = ModelFactory.create(params)
    model.enableInference({"predictedField": "value"})
    return model


def scores(rows, lo, hi, p):
    model = model_for(lo, hi)
    learning = int(math.floor(p / 2.0))
    likelihood = anomaly_likelihood.AnomalyLikelihood(
        learningPeriod=learning, estimationSamples=p - learning, reestimationPeriod=100
    )
    low = high = None
    out = []
    for at, value in rows:
        if value != value:
            out.append(0.0)
            continue
        raw = model.run({"timestamp": at, "value": value}).inferences["anomalyScore"]
        spatial = False
        if low != high:
            tolerance = (high - low) * SPATIAL_TOLERANCE
            spatial = value > high + tolerance or value < low - tolerance
        if high is None or value > high:
            high = value
        if low is None or value < low:
            low = value
        score = likelihood.computeLogLikelihood(likelihood.anomalyProbability(value, raw, at))
        out.append(1.0 if spatial else score)
    return out


def main(mode, source, target):
    with open(source) as fh:
        texts = [(r["timestamp"], r["value"]) for r in csv.DictReader(fh)]
    rows = [(datetime.datetime.strptime(t, "%Y-%m-%d %H:%M:%S"), float(v)) for t, v in texts]
    values = [v for _, v in rows]
    p = probation(len(rows))
    if mode == "file-range":
        known = [v for v in values if v == v]
        out = scores(rows, min(known), max(known), p)
    elif mode == "warm-up-range":
        seen = [v for v in values[: int(p)] if v == v]
        out = [0.0 if i < p else s for i, s in enumerate(scores(rows, min(seen), max(seen), p))]
    else:
        raise SystemExit("unknown mode " + mode)
    partial = target + ".part"
    with open(partial, "w") as fh:
        writer = csv.writer(fh)
        writer.writerow(["timestamp", "value", "anomaly_score"])
        for (t, v), s in zip(texts, out):
            writer.writerow([t, v, repr(s)])
    os.rename(partial, target)


if __name__ == "__main__":
    main(*sys.argv[1:4])
