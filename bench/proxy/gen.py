#!/usr/bin/env python3
"""Writes the same N credentials for every contestant.

    gen.py N OUT_DIR UPSTREAM_PORT

OUT_DIR/manifests/  Portcullis (local mode): upstream Service + EndpointSlice,
                    Ingress `/` with key-auth and `/open` without, N Secrets +
                    KongConsumers in one multi-document file.
OUT_DIR/nginx*.map  nginx `map` lines: key -> consumer username, consumer id
                    (X-Consumer-ID), credential id (X-Credential-Identifier).
OUT_DIR/haproxy*.map the same as HAProxy map files.
OUT_DIR/keys.txt    one valid key per line (the first is used by wrk).
OUT_DIR/identity.txt what the upstream echoes for the first key's consumer.

The ids are Portcullis' own for objects without metadata.uid (UUIDv5 of
"Kind/namespace/name"), so every contestant sends the upstream the same
identity headers Kong would.
"""
import os
import sys
import uuid

# src/world/meta.rs: UID_NAMESPACE
UID_NAMESPACE = uuid.UUID(int=0x6F1C2A8E93D44B7EA1F05C2D8E4B7A90)


def uid(kind, name, namespace="default"):
    return str(uuid.uuid5(UID_NAMESPACE, f"{kind}/{namespace}/{name}"))


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

    columns = {
        "": lambda i: f"consumer-{i}",
        "-consumer-id": lambda i: uid("KongConsumer", f"consumer-{i}"),
        "-credential-id": lambda i: uid("Secret", f"key-{i}"),
    }
    for suffix, value in columns.items():
        with open(os.path.join(out, f"nginx{suffix}.map"), "w") as f:
            f.writelines(f"{key} {value(i)};\n" for i, key in enumerate(keys))
        with open(os.path.join(out, f"haproxy{suffix}.map"), "w") as f:
            f.writelines(f"{key} {value(i)}\n" for i, key in enumerate(keys))
    with open(os.path.join(out, "identity.txt"), "w") as f:
        f.write(" ".join(f"{h}={columns[s](0)}" for h, s in (("user", ""), ("id", "-consumer-id"), ("cred", "-credential-id"))))
    with open(os.path.join(out, "keys.txt"), "w") as f:
        f.writelines(k + "\n" for k in keys)


if __name__ == "__main__":
    main()
