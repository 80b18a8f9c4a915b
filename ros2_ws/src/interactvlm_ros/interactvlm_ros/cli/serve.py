"""``interactvlm serve``: one Triton Inference Server hosting the configured model for many nodes
(``inference.backend: triton`` on the clients). Ports and batching: ``serve.*`` parameters; docs/serving.md."""

from __future__ import annotations

import logging
import sys


def add_parser(sub, common) -> None:
    p = sub.add_parser("serve", parents=[common],
                       help="serve the configured model from a Triton Inference Server (gRPC, HTTP, metrics) to "
                       "nodes with inference.backend=triton; ports: --set serve.grpc_port=... (docs/serving.md)")
    p.add_argument("--log-verbose", type=int, default=0, help="tritonserver's --log-verbose level")
    p.set_defaults(run=run)


def run(args) -> int:
    from interactvlm_ros.model import ContactPredictor
    from interactvlm_ros.serving.server import ContactServer, ServeConfig, pytriton_problem

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    problem = pytriton_problem()
    if problem:
        print(f"interactvlm serve: {problem}", file=sys.stderr)
        return 2
    cfg = args.cfg
    if cfg.inference.backend == "triton":  # the server runs the model locally: the default local backend
        cfg = cfg.replace(inference__backend="onnxruntime")
    predictors = [ContactPredictor.from_config(cfg) for _ in range(int(cfg.serve.instances))]
    predictor = predictors[0]
    server = ContactServer(predictors, ServeConfig.from_config(cfg), log_verbose=args.log_verbose)
    server.start()
    c = server.config
    print(f"serving model {cfg.model.name} (hash {server.model_hash}, {predictor.backend_name} backend)\n"
          f"  gRPC    {c.address}:{c.grpc_port}   <- inference.triton_url on the nodes\n"
          f"  HTTP    http://{c.address}:{c.http_port}/v2/health/ready\n"
          f"  metrics http://{c.address}:{c.metrics_port}/metrics", flush=True)
    server.serve_forever()
    return 0
