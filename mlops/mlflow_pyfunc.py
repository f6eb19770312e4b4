"""The pyfunc of every model `mlops train` logs to MLflow: the positive-class score of each row.

MLflow "models from code": `Tracker.log_candidate` passes this file's path as `python_model`; MLflow copies
it into the logged model and runs it when the model is loaded (`mlflow models serve`, `pyfunc.load_model`),
so nothing is pickled. The skops file is the model's artifact; it is loaded only when its sha256 matches
the one logged with it, with the skops types the manifest trusts. Not imported by the package.
"""

import hashlib

import mlflow
from mlflow.pyfunc import PythonModel


class PositiveScore(PythonModel):
    """predict(rows) -> the probability of the positive class (the last of the sorted classes, 1)."""

    def load_context(self, context):
        import skops.io as sio

        path = context.artifacts["model"]
        config = context.model_config
        with open(path, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()
        if digest != config["sha256"]:
            raise ValueError(f"{path}: sha256 {digest[:12]} does not match the logged {config['sha256'][:12]}")
        self.model = sio.load(path, trusted=list(config["trusted_types"]))

    def predict(self, context, model_input, params=None):
        return self.model.predict_proba(model_input)[:, -1]


mlflow.models.set_model(PositiveScore())
