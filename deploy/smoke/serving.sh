#!/usr/bin/env bash
# Which release the cluster kubectl points at serves: every Deployment of the application
# (component app or worker) must run images tagged TAG and have finished rolling out. The CI's
# kind job runs it after each deploy/rollout.sh, to see a good release kept and a broken one
# undone:
#   NAMESPACE=pedidos-veloz deploy/smoke/serving.sh <image tag>
set -euo pipefail

tag=${1:?usage: deploy/smoke/serving.sh <image tag>}
namespace=${NAMESPACE:-pedidos-veloz}
k() { kubectl --namespace "$namespace" "$@"; }
say() { echo "serving: $*" >&2; }

listing=$(k get deployments --selector 'app.kubernetes.io/component in (app,worker)' \
    --output 'jsonpath={range .items[*]}{.metadata.name}{" "}{.spec.template.spec.containers[*].image}{"\n"}{end}')
[ -n "$listing" ] || { say "no application Deployment in $namespace"; exit 1; }

wrong=0
while read -r name images; do
    if ! k rollout status "deployment/$name" --timeout=60s > /dev/null; then
        say "$name has not finished rolling out"
        wrong=1
    fi
    for image in $images; do
        if [ "${image##*:}" != "$tag" ]; then
            say "$name runs $image, not :$tag"
            wrong=1
        fi
    done
    say "$name: $images"
done <<< "$listing"
exit "$wrong"
