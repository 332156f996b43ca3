//! `bundle --serve`: the Deployment, Service and NetworkPolicy that run `serve` in a cluster,
//! parsed back and checked for what the restricted Pod Security Standard and the fleet need, and
//! taken by `kubectl apply --dry-run=client` (against a stand-in that answers kubectl's API
//! discovery on 127.0.0.1, since no cluster is here; kubectl's schema validation needs a real API
//! server's OpenAPI and is off). The command in the pod is the one `serve` takes, run here.

use std::process::Command;

use crate::support::{
    load::Serving,
    project::{stderr, Project, ONE_TARGET},
    python, run_fails, run_ok,
};

/// kubectl's discovery of the three kinds' API groups, and nothing else.
const DISCOVERY: &str = r#"
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

def resource(name, kind):
    return {"name": name, "singularName": kind.lower(), "namespaced": True, "kind": kind, "verbs": ["create", "get", "patch"]}

def group(name):
    version = {"groupVersion": name + "/v1", "version": "v1"}
    return {"name": name, "versions": [version], "preferredVersion": version}

DOCUMENTS = {
    "/api": {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []},
    "/apis": {"kind": "APIGroupList", "apiVersion": "v1", "groups": [group("apps"), group("networking.k8s.io")]},
    "/api/v1": {"kind": "APIResourceList", "groupVersion": "v1", "resources": [resource("services", "Service")]},
    "/apis/apps/v1": {"kind": "APIResourceList", "groupVersion": "apps/v1", "resources": [resource("deployments", "Deployment")]},
    "/apis/networking.k8s.io/v1": {"kind": "APIResourceList", "groupVersion": "networking.k8s.io/v1", "resources": [resource("networkpolicies", "NetworkPolicy")]},
}

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        document = DOCUMENTS.get(self.path.split("?")[0])
        body = json.dumps(document if document else {"kind": "Status", "code": 404}).encode()
        self.send_response(200 if document else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = HTTPServer(("127.0.0.1", 0), Handler)
print(server.server_address[1], flush=True)
server.serve_forever()
"#;

fn documents(yaml: &str) -> Vec<serde_json::Value> {
    use serde::Deserialize;
    serde_yaml_ng::Deserializer::from_str(yaml)
        .map(|document| serde_json::Value::deserialize(document).unwrap())
        .collect()
}

#[test]
fn bundle_serve_writes_a_hardened_deployment_service_and_policy_that_kubectl_takes() {
    let project = Project::with_wheelhouse("purelib\ncompiled\n", &ONE_TARGET);
    run_ok(&mut project.command(&["pack-wheelhouse"]));
    let output = run_ok(&mut project.command(&[
        "bundle",
        "--serve",
        "wheels",
        "--image",
        "localhost/wheelgap:1",
        "--namespace",
        "build",
        "--claim",
        "wheels-pvc",
        "--allow",
        "team.example/builder=yes",
        "--serve-arg=--keyring",
        "--serve-arg",
        "/keys/team.gpg",
        "-o",
        "serve.yaml",
    ]));
    assert!(stderr(&output).contains("http://wheels.build.svc:8080/simple/"), "{}", stderr(&output));
    let yaml = fs_err::read_to_string(project.root().join("serve.yaml")).unwrap();
    let objects = documents(&yaml);
    let kinds: Vec<&str> = objects.iter().map(|object| object["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Deployment", "Service", "NetworkPolicy"]);
    let (deployment, service, policy) = (&objects[0], &objects[1], &objects[2]);
    let pod = &deployment["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "localhost/wheelgap:1");
    let args: Vec<&str> = container["args"].as_array().unwrap().iter().map(|arg| arg.as_str().unwrap()).collect();
    assert_eq!(
        args,
        [
            "serve",
            "--archive",
            "/wheelhouse/wheelhouse.tgz",
            "--bind",
            "0.0.0.0:8080",
            "--memory",
            "128",
            "--keyring",
            "/keys/team.gpg"
        ]
    );
    for (field, expected) in [
        (&container["securityContext"]["readOnlyRootFilesystem"], serde_json::json!(true)),
        (&container["securityContext"]["allowPrivilegeEscalation"], serde_json::json!(false)),
        (&container["securityContext"]["capabilities"]["drop"], serde_json::json!(["ALL"])),
        (&pod["securityContext"]["runAsNonRoot"], serde_json::json!(true)),
        (&pod["securityContext"]["seccompProfile"]["type"], serde_json::json!("RuntimeDefault")),
        (&pod["automountServiceAccountToken"], serde_json::json!(false)),
        (&pod["volumes"][0]["persistentVolumeClaim"], serde_json::json!({"claimName": "wheels-pvc", "readOnly": true})),
        (&container["readinessProbe"]["httpGet"]["path"], serde_json::json!("/healthz")),
        (&container["livenessProbe"]["httpGet"]["path"], serde_json::json!("/healthz")),
        (
            &policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"],
            serde_json::json!({"team.example/builder": "yes"}),
        ),
        (&policy["spec"]["egress"], serde_json::json!([])),
        (&service["spec"]["ports"][0]["port"], serde_json::json!(8080)),
    ] {
        assert_eq!(field, &expected, "{yaml}");
    }
    assert!(
        container["resources"]["limits"]["memory"].is_string() && container["resources"]["limits"]["cpu"].is_string()
    );
    assert_eq!(service["spec"]["selector"], deployment["spec"]["selector"]["matchLabels"]);
    assert_eq!(policy["spec"]["podSelector"]["matchLabels"], deployment["spec"]["template"]["metadata"]["labels"]);

    // The pod's command, run here on the same archive (its path here): it verifies and serves.
    let command =
        project.command(&["serve", "--archive", "wheelhouse.tgz", "--bind", "127.0.0.1:0", "--memory", "128"]);
    let server = Serving::start(command, &project.tmp.path().join("pod.log"));
    let health = crate::support::load::client().get(server.url("/healthz")).send();
    assert_eq!(health.unwrap().status(), 200);
    drop(server);

    // What kubectl refuses before any cluster sees it: names and labels.
    for name in ["Wheels", "1wheels"] {
        let refused = stderr(&run_fails(&mut project.command(&["bundle", "--serve", name, "--image", "i"])));
        assert!(refused.contains("not a valid Kubernetes"), "{refused}");
    }
    assert_eq!(policy["spec"]["ingress"][0]["from"][0]["namespaceSelector"], serde_json::json!({}));
    assert_eq!(deployment["spec"]["strategy"]["type"], "Recreate");
    assert_eq!(container["readinessProbe"]["timeoutSeconds"], 5);
    let refused =
        stderr(&run_fails(&mut project.command(&["bundle", "--serve", "w", "--image", "i", "--allow", "a=b c"])));
    assert!(refused.contains("not a valid Kubernetes label"), "{refused}");

    if Command::new("kubectl").args(["version", "--client"]).output().is_err() {
        eprintln!("kubectl not installed: the dry run is skipped");
        return;
    }
    let script = project.write("discovery.py", DISCOVERY);
    let mut discovery = Command::new(python()).arg(&script).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut port = String::new();
    std::io::BufRead::read_line(&mut std::io::BufReader::new(discovery.stdout.take().unwrap()), &mut port).unwrap();
    let server = format!("http://127.0.0.1:{}", port.trim());
    let applied = Command::new("kubectl")
        .args(["--server", &server, "apply", "--dry-run=client", "--validate=false", "-f", "serve.yaml"])
        .current_dir(project.root())
        .env("KUBECONFIG", "/dev/null")
        .output()
        .unwrap();
    discovery.kill().unwrap();
    discovery.wait().unwrap();
    let said = String::from_utf8_lossy(&applied.stdout).into_owned();
    assert!(applied.status.success(), "{said}{}", String::from_utf8_lossy(&applied.stderr));
    assert_eq!(
        said,
        "deployment.apps/wheels created (dry run)\nservice/wheels created (dry run)\nnetworkpolicy.networking.k8s.io/wheels created (dry run)\n"
    );
}
