"""A test Kubernetes API server that also runs its pods as local processes.

:class:`FakeKubeApi` serves the Kubernetes REST API over real HTTP(S) on 127.0.0.1 to the real
lightkube client: objects, Status errors, watches, server-side apply, the logs API, and a
kubelet that runs every container as a process in a private mount namespace with its volumes
bind-mounted at their mountPath. Modules: ``api`` (assembly, test controls), ``server`` and
``podlogs`` (routes), ``registry``/``deletion``/``admission``/``defaults`` (API semantics),
``schema``/``podvalidation``/``fielderrors``/``quantity`` (422 causes), ``patches``/``apply``
(PATCH bodies, server-side apply), ``selectors``, ``store`` (objects, resourceVersions, watch
fan-out), ``controllers`` (garbage collector, namespaces), ``kubelet``/``runtime``/
``containers``/``volumes``/``podstatus``/``logs``/``hostpaths`` (running pods), ``scheduler``,
``events``, ``tls``, ``timefmt``.

Use it as ``async with FakeKubeApi(tmp_path / "kube", images={"alpine": ["/bin/sh"]}) as api:``
and connect with ``AsyncClient(api.lightkube_config())`` or a kubeconfig from
``api.kubeconfig(path)``. Test hooks: ``objects()``, ``events``, ``requests``,
``fail_next()``, ``drop_log_streams()``, ``compact()``, ``wait_pod_gone()``.

Simplifications (everything else aims to match a 1.30 API server and kubelet to the letter):

* One binary-less "node" per entry of ``nodes``; the host is every node's file system and
  every image: ``images`` only supplies entrypoints, nothing is pulled. Images named
  ``*pull-error*`` or ``*does-not-exist*`` fail to pull; others "pull" in ``start_delay_s / 2``.
* restartPolicy is always treated as Never: containers are never restarted, ``previous=true``
  always answers "not found", and probes, lifecycle hooks, sidecar init containers
  (``restartPolicy: Always`` on an init container), resources and cgroups are ignored. The
  scheduler does not count resources; an OOM kill is any SIGKILL the kubelet did not send.
* Processes share the host's network, PID namespace and users; only mounts are private.
  Volumes are plain directories (no ``..data`` symlinks, Secrets are not refreshed after
  mount). Mount points missing on the host are created there and removed when the last fake
  exits. The kubernetes service env vars point at this server; projected service-account
  tokens are the server's bearer token.
* Schema validation is strict and answers 422 Invalid with causes for unknown fields and wrong
  types too, where a real server answers 400 or drops unknown fields with a warning.
  ``dryRun`` is refused. Only ``v1`` Events are written; the scheduler's appear in their
  ``events.k8s.io`` shape.
* Server-side apply tracks field ownership per leaf path with the merge keys of
  ``patches.MERGE_KEYS``; status writes by the kubelet are not recorded in managedFields.
* The garbage collector and the namespace controller act synchronously (a dangling owner
  reference right after the write); deleting a namespace deletes its objects, then it.
* Watch bookmarks are sent every ``bookmark_interval_s`` (1 s) of silence, not once a minute;
  the watch history holds the last 4096 changes (``compact()`` drops it).
* Authentication: the bearer token (``token``) or, with ``tls=True``, a client certificate
  signed by the generated CA; there is no authorization (every identity may do anything).
"""

from .api import FakeKubeApi

__all__ = ["FakeKubeApi"]
