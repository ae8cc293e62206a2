"""Checks that the rendered example overlay keeps what the base promises.

Run by deploy/validate.sh:
    python test_rendered.py BASE_YAML OVERLAY_YAML OVERLAY_DIR
BASE_YAML and OVERLAY_YAML are `kubectl kustomize` renderings of
deploy/k8s/base and of the overlay in OVERLAY_DIR (its kustomization.yaml
gives the expected namespace, image and replica counts).
"""

import sys
import tomllib
import unittest
from pathlib import Path

import yaml

BASE: list = []
OVERLAY: list = []
OVERLAY_KUSTOMIZATION: dict = {}

COORDINATOR = "dmtl-coordinator"
WORKERS = {"seg": "dmtl-worker-seg", "depth": "dmtl-worker-depth"}
CLUSTER_SCOPED = {"Namespace", "PersistentVolume"}


def load(path):
    with open(path, encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def find(docs, kind, name):
    hits = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    if len(hits) != 1:
        raise AssertionError(f"expected one {kind}/{name}, found {len(hits)}")
    return hits[0]


def pod_spec(deployment):
    return deployment["spec"]["template"]["spec"]


def only_container(deployment):
    containers = pod_spec(deployment)["containers"]
    assert len(containers) == 1, deployment["metadata"]["name"]
    return containers[0]


def flags(container):
    """`--key=value` and bare `--key` arguments as a dict (bare ones map to True)."""
    out = {}
    for arg in container.get("args", []):
        if arg.startswith("--"):
            key, sep, value = arg[2:].partition("=")
            out[key] = value if sep else True
    return out


def mount_source(deployment, mount_path):
    """(volumeMount, volume) of the mount at mount_path."""
    container = only_container(deployment)
    mounts = [m for m in container.get("volumeMounts", []) if m["mountPath"] == mount_path]
    assert len(mounts) == 1, f"{deployment['metadata']['name']}: no single mount at {mount_path}"
    volumes = {v["name"]: v for v in pod_spec(deployment).get("volumes", [])}
    return mounts[0], volumes[mounts[0]["name"]]


def port_of(address):
    return int(address.rsplit(":", 1)[1])


class RenderedOverlay(unittest.TestCase):
    def coordinator(self):
        return find(OVERLAY, "Deployment", COORDINATOR)

    def workers(self):
        return {task: find(OVERLAY, "Deployment", name) for task, name in WORKERS.items()}

    def all_deployments(self):
        return [self.coordinator(), *self.workers().values()]

    def test_every_base_object_is_in_the_overlay(self):
        def key(doc):
            name = doc["metadata"]["name"]
            if doc["kind"] in ("ConfigMap", "Secret"):
                name = name.rsplit("-", 1)[0]  # the generator's hash suffix
            return doc["kind"], name

        overlay = {key(d) for d in OVERLAY}
        for doc in BASE:
            self.assertIn(key(doc), overlay)

    def test_the_base_is_namespace_free(self):
        for doc in BASE:
            self.assertNotIn("namespace", doc["metadata"], doc["metadata"]["name"])

    def test_every_namespaced_object_is_in_the_overlay_namespace(self):
        namespace = OVERLAY_KUSTOMIZATION["namespace"]
        find(OVERLAY, "Namespace", namespace)
        for doc in OVERLAY:
            if doc["kind"] not in CLUSTER_SCOPED:
                self.assertEqual(doc["metadata"].get("namespace"), namespace, doc["metadata"]["name"])

    def test_the_coordinator_is_a_single_replica_recreated_on_update(self):
        spec = self.coordinator()["spec"]
        self.assertEqual(spec["replicas"], 1)
        self.assertEqual(spec["strategy"]["type"], "Recreate")

    def test_the_coordinator_probes_are_native_grpc_on_its_grpc_port(self):
        container = only_container(self.coordinator())
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        self.assertEqual(ports["grpc"], port_of(flags(container)["listen"]))
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            self.assertIn(probe, container)
            self.assertEqual(set(container[probe]) & {"grpc", "httpGet", "tcpSocket", "exec"}, {"grpc"})
            self.assertEqual(container[probe]["grpc"]["port"], ports["grpc"], probe)
        self.assertEqual(container["readinessProbe"]["grpc"]["service"], "dmtl.v1.Coordinator")

    def test_the_service_exposes_grpc_and_metrics_of_the_coordinator(self):
        service = find(OVERLAY, "Service", COORDINATOR)
        template_labels = self.coordinator()["spec"]["template"]["metadata"]["labels"]
        for label, value in service["spec"]["selector"].items():
            self.assertEqual(template_labels.get(label), value)
        container = only_container(self.coordinator())
        container_ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        self.assertEqual(container_ports["metrics"], port_of(flags(container)["metrics-listen"]))
        service_ports = {p["name"]: p for p in service["spec"]["ports"]}
        self.assertEqual(set(service_ports), {"grpc", "metrics"})
        for name, port in service_ports.items():
            self.assertEqual(port["targetPort"], name)
            self.assertIn(name, container_ports)

    def test_workers_find_the_coordinator_through_the_service(self):
        service = find(OVERLAY, "Service", COORDINATOR)
        grpc = next(p["port"] for p in service["spec"]["ports"] if p["name"] == "grpc")
        for task, worker in self.workers().items():
            args = flags(only_container(worker))
            self.assertEqual(args["coordinator"], f"http://{COORDINATOR}:{grpc}")
            self.assertEqual(args["task"], task)
            self.assertTrue(args["device"].startswith("cuda:"))

    def test_workers_request_one_gpu_each(self):
        for worker in self.workers().values():
            resources = only_container(worker)["resources"]
            self.assertGreaterEqual(int(resources["limits"]["nvidia.com/gpu"]), 1)
            self.assertEqual(resources["requests"]["nvidia.com/gpu"], resources["limits"]["nvidia.com/gpu"])
        self.assertNotIn("nvidia.com/gpu", only_container(self.coordinator())["resources"].get("limits", {}))

    def test_worker_replicas_are_the_overlays(self):
        wanted = {r["name"]: r["count"] for r in OVERLAY_KUSTOMIZATION.get("replicas", [])}
        for name, count in wanted.items():
            self.assertEqual(find(OVERLAY, "Deployment", name)["spec"]["replicas"], count)

    def test_the_dataset_is_mounted_read_only_where_data_root_points(self):
        for deployment in self.all_deployments():
            root = flags(only_container(deployment))["data-root"]
            mount, volume = mount_source(deployment, root)
            self.assertIs(mount.get("readOnly"), True)
            claim = volume["persistentVolumeClaim"]
            self.assertIs(claim.get("readOnly"), True)
            pvc = find(OVERLAY, "PersistentVolumeClaim", claim["claimName"])
            self.assertEqual(pvc["spec"]["accessModes"], ["ReadOnlyMany"])

    def test_every_container_reads_the_token_from_the_secret(self):
        secrets = {d["metadata"]["name"]: d for d in OVERLAY if d["kind"] == "Secret"}
        for deployment in self.all_deployments():
            env = {e["name"]: e for e in only_container(deployment).get("env", [])}
            ref = env["DMTL_TOKEN"]["valueFrom"]["secretKeyRef"]
            self.assertIn(ref["name"], secrets)
            self.assertIn(ref["key"], secrets[ref["name"]].get("data", {}))
            self.assertNotIn("value", env["DMTL_TOKEN"])

    def test_the_run_dir_is_the_writable_run_volume_of_the_coordinator_only(self):
        coordinator = self.coordinator()
        mount, volume = mount_source(coordinator, flags(only_container(coordinator))["run-dir"])
        self.assertFalse(mount.get("readOnly", False))
        claim = volume["persistentVolumeClaim"]["claimName"]
        self.assertEqual(find(OVERLAY, "PersistentVolumeClaim", claim)["spec"]["accessModes"], ["ReadWriteOnce"])
        for worker in self.workers().values():
            claims = [v["persistentVolumeClaim"]["claimName"] for v in pod_spec(worker)["volumes"]
                      if "persistentVolumeClaim" in v]
            self.assertNotIn(claim, claims)
            self.assertNotIn("run-dir", flags(only_container(worker)))

    def test_the_coordinator_config_comes_from_the_configmap_and_parses(self):
        coordinator = self.coordinator()
        config = Path(flags(only_container(coordinator))["config"])
        _, volume = mount_source(coordinator, str(config.parent))
        configmap = find(OVERLAY, "ConfigMap", volume["configMap"]["name"])
        parsed = tomllib.loads(configmap["data"][config.name])
        self.assertEqual(parsed["version"], 1)
        self.assertIn(parsed["distributed"]["data_plane"], ("grpc", "nccl"))
        self.assertIn("resume", flags(only_container(coordinator)))

    def test_pods_run_as_non_root_without_privilege_escalation(self):
        for deployment in self.all_deployments():
            security = pod_spec(deployment)["securityContext"]
            self.assertIs(security["runAsNonRoot"], True)
            self.assertNotEqual(security["runAsUser"], 0)
            container = only_container(deployment)["securityContext"]
            self.assertIs(container["allowPrivilegeEscalation"], False)
            self.assertEqual(container["capabilities"]["drop"], ["ALL"])

    def test_every_container_runs_the_overlays_image(self):
        image = OVERLAY_KUSTOMIZATION["images"][0]
        for deployment in self.all_deployments():
            self.assertEqual(only_container(deployment)["image"], f"{image['newName']}:{image['newTag']}")


def main():
    global BASE, OVERLAY, OVERLAY_KUSTOMIZATION
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    BASE = load(sys.argv[1])
    OVERLAY = load(sys.argv[2])
    OVERLAY_KUSTOMIZATION = load(Path(sys.argv[3]) / "kustomization.yaml")[0]
    result = unittest.main(argv=sys.argv[:1], exit=False, verbosity=1).result
    failed = len(result.failures) + len(result.errors)
    print(f"k8s: {result.testsRun - failed} passed, {failed} failed")
    sys.exit(0 if result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
