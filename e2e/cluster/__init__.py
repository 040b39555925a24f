"""Bringing the cluster up, in order, and the module that does each step.

Outside the sandbox (`python -m e2e`):

1. `build`: the pinned binaries (etcd, kube-apiserver, kube-controller-manager,
   kube-scheduler, kubelet, KEDA, Prometheus, Helm, containerd, pause) from the Go
   module proxy, cached outside the checkout.
2. `image`: the project's image from its Dockerfile (buildah on an mmdebstrap base),
   kept as an OCI layout; `oci` runs a command of it with runc (`--check`).
3. `sandbox`: private network, mount and PID namespaces; the run starts again in them.

Inside it, `up.bring_up` (`up` holds the `Cluster` the experiment works on):

4. `sandbox.set_up`: `lo` up and the only device, /etc/resolv.conf naming the DNS
   stand-in.
5. `control_plane`: etcd, kube-apiserver and kube-controller-manager on 127.0.0.1, with
   keys and certificates from `pki`; `kube` is the API client.
6. `offered`: the offered-rate endpoint the floor fleet's `metrics-api` trigger reads.
7. `cluster_dns`: `*.svc.cluster.local` from Services and EndpointSlices.
8. `keda_operator`: KEDA's CRDs, operator and metrics adapter, until its APIService is
   Available.
9. `node`: containerd with the image and pause imported, the pod network (`cni`),
   kubelet, kube-scheduler and the `kubernetes` Service's relay (`service_relay`),
   until the Node is Ready.
10. Prometheus (in `up`), scraping the rating pods.
11. The manifests: the direct fleet through `helm`, the others with `kubectl apply -k`;
    once KEDA has made every HPA, the HPA controller (`control_plane`), so every HPA
    syncs in the same instant; then each fleet's pods ready and its HPA reading its
    metric.

Reading the cluster: `observe` (Deployments, HPAs and ScaledObjects from the API),
`hpa_syncs` (when the HPA controller synced, from its log) and `pod_images` (what the
pods run from).

Imports nothing from `e2e.experiment` or `e2e.report`.
"""
