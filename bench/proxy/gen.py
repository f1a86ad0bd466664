#!/usr/bin/env python3
"""Writes the same N credentials for every contestant.

    gen.py N OUT_DIR UPSTREAM_PORT

OUT_DIR/manifests/  Portcullis (local mode): upstream Service + EndpointSlice,
                    Ingress `/` with key-auth and `/open` without, N Secrets +
                    KongConsumers in one multi-document file.
OUT_DIR/nginx.map   nginx `map` lines: key -> username.
OUT_DIR/haproxy.map HAProxy map file: key -> username.
OUT_DIR/keys.txt    one valid key per line (the first is used by wrk).
"""
import os
import sys


def main():
    n, out, upstream_port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    manifests = os.path.join(out, "manifests")
    os.makedirs(manifests, exist_ok=True)
    keys = [f"bench-key-{i:07d}-{(i * 2654435761) % 4294967296:08x}" for i in range(n)]

    with open(os.path.join(manifests, "routes.yaml"), "w") as f:
        f.write(f"""apiVersion: v1
kind: Service
metadata:
  name: upstream
  annotations:
    konghq.com/plugins: key-auth
spec:
  ports: [{{name: http, port: 80}}]
---
apiVersion: v1
kind: Service
metadata:
  name: upstream-open
spec:
  ports: [{{name: http, port: 80}}]
""")
        for svc in ("upstream", "upstream-open"):
            f.write(f"""---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: {svc}
  labels: {{kubernetes.io/service-name: {svc}}}
addressType: IPv4
ports: [{{name: http, port: {upstream_port}}}]
endpoints: [{{addresses: [127.0.0.1]}}]
""")
        f.write("""---
apiVersion: configuration.konghq.com/v1
kind: KongPlugin
metadata: {name: key-auth}
plugin: key-auth
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: bench}
spec:
  ingressClassName: kong
  rules:
  - http:
      paths:
      - {path: /open, pathType: Prefix, backend: {service: {name: upstream-open, port: {number: 80}}}}
      - {path: /, pathType: Prefix, backend: {service: {name: upstream, port: {number: 80}}}}
""")

    with open(os.path.join(manifests, "consumers.yaml"), "w") as f:
        for i, key in enumerate(keys):
            f.write(f"""---
apiVersion: v1
kind: Secret
metadata:
  name: key-{i}
  labels: {{konghq.com/credential: key-auth}}
stringData: {{key: {key}}}
---
apiVersion: configuration.konghq.com/v1
kind: KongConsumer
metadata:
  name: consumer-{i}
  annotations: {{kubernetes.io/ingress.class: kong}}
username: consumer-{i}
credentials: [key-{i}]
""")

    with open(os.path.join(out, "nginx.map"), "w") as f:
        f.writelines(f"{key} consumer-{i};\n" for i, key in enumerate(keys))
    with open(os.path.join(out, "haproxy.map"), "w") as f:
        f.writelines(f"{key} consumer-{i}\n" for i, key in enumerate(keys))
    with open(os.path.join(out, "keys.txt"), "w") as f:
        f.writelines(k + "\n" for k in keys)


if __name__ == "__main__":
    main()
