//! The Kubernetes objects that run `serve` in a cluster: a Deployment that serves the archive on
//! a claim (the one `bundle --pvc` fills), a Service in front of it, and a NetworkPolicy that
//! admits only the pods that carry a given label. Hardened as the `restricted` Pod Security
//! Standard asks: non-root, no privilege escalation, no capabilities, a read-only root file system
//! (the archive is extracted into an `emptyDir` of bounded size), resource limits, probes on
//! `/healthz`.

use anyhow::{Context, Result};
use serde_json::json;

use crate::model::kubernetes::LOADER_MOUNT;

/// The port `serve` listens on in the pod, and the Service's.
pub const SERVE_PORT: u16 = 8080;
/// The label a client pod carries to be admitted by the NetworkPolicy, by default.
pub const DEFAULT_CLIENT_LABEL: (&str, &str) = ("wheelgap.io/index-client", "true");
/// `nobody`, as the loader.
const USER: u32 = 65534;
/// MiB of files `serve` holds in memory; the container's memory limit leaves room above it.
const MEMORY_BUDGET_MIB: u64 = 128;

/// What the objects are made of.
pub struct ServeObjects<'a> {
    pub name: &'a str,
    pub namespace: Option<&'a str>,
    pub image: &'a str,
    /// The claim holding the archive, and the archive's file name on it.
    pub claim: &'a str,
    pub archive_name: &'a str,
    /// The size of the scratch volume the archive is extracted into (`"300Mi"`).
    pub scratch: &'a str,
    pub client_label: (&'a str, &'a str),
    /// Arguments added to `serve` (signature flags, paths inside the image).
    pub extra_args: &'a [String],
}

/// The labels of the serving pods, and the selector of the Service and the policy.
fn labels(name: &str) -> serde_json::Value {
    json!({ "app.kubernetes.io/instance": name, "app.kubernetes.io/name": "wheelgap-serve" })
}

/// The three objects as one YAML stream: Deployment, Service, NetworkPolicy.
pub fn serve_yaml(objects: &ServeObjects) -> Result<String> {
    let metadata = |name: &str| {
        let mut metadata = json!({ "labels": labels(objects.name), "name": name });
        if let Some(namespace) = objects.namespace {
            metadata["namespace"] = json!(namespace);
        }
        metadata
    };
    let mut args: Vec<String> = vec![
        "serve".into(),
        "--archive".into(),
        format!("{LOADER_MOUNT}/{}", objects.archive_name),
        "--bind".into(),
        format!("0.0.0.0:{SERVE_PORT}"),
        "--memory".into(),
        MEMORY_BUDGET_MIB.to_string(),
    ];
    args.extend(objects.extra_args.iter().cloned());
    let probe = |period: u32, failures: u32| {
        json!({
            "failureThreshold": failures,
            "httpGet": { "path": "/healthz", "port": "http" },
            "periodSeconds": period,
            "timeoutSeconds": 5,
        })
    };
    let deployment = json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(objects.name),
        "spec": {
            "replicas": 1,
            "selector": { "matchLabels": labels(objects.name) },
            // The claim is ReadWriteOnce: a new pod on another node could not mount it while the
            // old one runs, so the old one goes first.
            "strategy": { "type": "Recreate" },
            "template": {
                "metadata": { "labels": labels(objects.name) },
                "spec": {
                    "automountServiceAccountToken": false,
                    "containers": [{
                        "args": args,
                        "command": ["wheelgap"],
                        // The archive is verified and extracted under TMPDIR before the server listens.
                        "env": [{ "name": "TMPDIR", "value": "/tmp" }],
                        "image": objects.image,
                        "livenessProbe": probe(10, 3),
                        "name": "serve",
                        "ports": [{ "containerPort": SERVE_PORT, "name": "http", "protocol": "TCP" }],
                        "readinessProbe": probe(5, 1),
                        "resources": {
                            "limits": { "cpu": "2", "memory": "512Mi" },
                            "requests": { "cpu": "100m", "memory": "256Mi" },
                        },
                        "securityContext": {
                            "allowPrivilegeEscalation": false,
                            "capabilities": { "drop": ["ALL"] },
                            "readOnlyRootFilesystem": true,
                            "runAsNonRoot": true,
                        },
                        // Verifying a large archive takes a while: ten minutes before liveness counts.
                        "startupProbe": probe(5, 120),
                        "volumeMounts": [
                            { "mountPath": LOADER_MOUNT, "name": "wheelhouse", "readOnly": true },
                            { "mountPath": "/tmp", "name": "scratch" },
                        ],
                    }],
                    "securityContext": {
                        "fsGroup": USER,
                        "runAsGroup": USER,
                        "runAsNonRoot": true,
                        "runAsUser": USER,
                        "seccompProfile": { "type": "RuntimeDefault" },
                    },
                    // serve's own grace is 10 s (`--grace`): open requests finish before the kill.
                    "terminationGracePeriodSeconds": 30,
                    "volumes": [
                        { "name": "wheelhouse", "persistentVolumeClaim": { "claimName": objects.claim, "readOnly": true } },
                        { "emptyDir": { "sizeLimit": objects.scratch }, "name": "scratch" },
                    ],
                },
            },
        },
    });
    let service = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(objects.name),
        "spec": {
            "ports": [{ "name": "http", "port": SERVE_PORT, "protocol": "TCP", "targetPort": "http" }],
            "selector": labels(objects.name),
            "type": "ClusterIP",
        },
    });
    let (key, value) = objects.client_label;
    let policy = json!({
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(objects.name),
        "spec": {
            // serve needs nothing outside its pod: no egress at all.
            "egress": [],
            "ingress": [{
                // Pods with the label in any namespace: builders often run in namespaces of their own.
                "from": [{ "namespaceSelector": {}, "podSelector": { "matchLabels": { key: value } } }],
                "ports": [{ "port": SERVE_PORT, "protocol": "TCP" }],
            }],
            "podSelector": { "matchLabels": labels(objects.name) },
            "policyTypes": ["Ingress", "Egress"],
        },
    });
    let mut text = String::new();
    for (kind, object) in [("Deployment", deployment), ("Service", service), ("NetworkPolicy", policy)] {
        if !text.is_empty() {
            text.push_str("---\n");
        }
        text.push_str(&serde_yaml_ng::to_string(&object).with_context(|| format!("cannot write the {kind} as YAML"))?);
    }
    Ok(text)
}

/// The index URL pods in the cluster use: the Service's name in its namespace.
pub fn index_url(name: &str, namespace: Option<&str>) -> String {
    match namespace {
        Some(namespace) => format!("http://{name}.{namespace}.svc:{SERVE_PORT}/simple/"),
        None => format!("http://{name}:{SERVE_PORT}/simple/"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_objects_are_hardened_and_select_each_other() {
        let yaml = serve_yaml(&ServeObjects {
            name: "wheels",
            namespace: Some("build"),
            image: "localhost/wheelgap:1",
            claim: "wheels-pvc",
            archive_name: "wheelhouse.tgz",
            scratch: "300Mi",
            client_label: DEFAULT_CLIENT_LABEL,
            extra_args: &[],
        })
        .unwrap();
        let documents: Vec<serde_json::Value> =
            yaml.split("---\n").map(|document| serde_yaml_ng::from_str(document).unwrap()).collect();
        let [deployment, service, policy] = &documents[..] else { panic!("{yaml}") };
        let pod = &deployment["spec"]["template"]["spec"];
        let container = &pod["containers"][0];
        assert_eq!(container["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(container["securityContext"]["allowPrivilegeEscalation"], false);
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(container["readinessProbe"]["httpGet"]["path"], "/healthz");
        assert!(container["resources"]["limits"]["memory"].is_string());
        assert_eq!(container["args"][2], "/wheelhouse/wheelhouse.tgz");
        assert_eq!(pod["volumes"][0]["persistentVolumeClaim"]["readOnly"], true);
        let selector = &deployment["spec"]["selector"]["matchLabels"];
        assert_eq!(&deployment["spec"]["template"]["metadata"]["labels"], selector);
        assert_eq!(&service["spec"]["selector"], selector);
        assert_eq!(&policy["spec"]["podSelector"]["matchLabels"], selector);
        assert_eq!(
            policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["wheelgap.io/index-client"],
            "true"
        );
        assert_eq!(index_url("wheels", Some("build")), "http://wheels.build.svc:8080/simple/");
        assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    }
}
