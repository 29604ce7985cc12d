{{/* Names */}}
{{- define "topolane.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "topolane.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Labels; call with (dict "root" $ "component" "scheduler") */}}
{{- define "topolane.selectorLabels" -}}
app.kubernetes.io/name: {{ include "topolane.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "topolane.labels" -}}
{{ include "topolane.selectorLabels" . }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* ServiceAccount names */}}
{{- define "topolane.schedulerServiceAccount" -}}
{{- default (printf "%s-scheduler" (include "topolane.fullname" .)) .Values.scheduler.serviceAccount.name -}}
{{- end -}}

{{/* The extender's identity: its own ServiceAccount, or the scheduler's when not separate. */}}
{{- define "topolane.extenderServiceAccount" -}}
{{- if .Values.extender.serviceAccount.separate -}}
{{- default (printf "%s-extender" (include "topolane.fullname" .)) .Values.extender.serviceAccount.name -}}
{{- else -}}
{{- include "topolane.schedulerServiceAccount" . -}}
{{- end -}}
{{- end -}}

{{- define "topolane.agentServiceAccount" -}}
{{- default (printf "%s-agent" (include "topolane.fullname" .)) .Values.agent.serviceAccount.name -}}
{{- end -}}

{{- define "topolane.extenderUsername" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "topolane.extenderServiceAccount" .) -}}
{{- end -}}

{{/* Kubernetes versions. The supported window: the minors a kube-scheduler is configured for here. */}}
{{- define "topolane.minMinor" -}}33{{- end -}}
{{- define "topolane.maxMinor" -}}37{{- end -}}

{{/*
The kube-scheduler's version: scheduler.image.tag, or the cluster's version without vendor
suffixes (v1.33.5+k3s1 and v1.33.5-eks-1a2b3c are both v1.33.5). Fails outside the supported
window, and when the tag is newer than the cluster.
*/}}
{{- define "topolane.schedulerVersion" -}}
{{- $cluster := semver .Capabilities.KubeVersion.Version -}}
{{- $version := $cluster -}}
{{- with .Values.scheduler.image.tag -}}
{{- if not (regexMatch "^v?[0-9]+\\.[0-9]+\\.[0-9]+" .) -}}
{{- fail (printf "scheduler.image.tag %q is not a Kubernetes version (vMAJOR.MINOR.PATCH): set it to a kube-scheduler release such as v1.33.5, or leave it empty to follow the cluster" .) -}}
{{- end -}}
{{- $version = semver . -}}
{{- end -}}
{{- $min := include "topolane.minMinor" . | int -}}
{{- $max := include "topolane.maxMinor" . | int -}}
{{- if not $.Values.scheduler.allowUnsupportedVersion -}}
{{- if or (ne ($version.Major | int) 1) (lt ($version.Minor | int) $min) (gt ($version.Minor | int) $max) -}}
{{- fail (printf "topolane's scheduler supports Kubernetes 1.%d to 1.%d; this would run kube-scheduler v%s (cluster v%s). Use a topolane release made for this version, or set scheduler.allowUnsupportedVersion=true to try anyway" $min $max $version.Original $cluster.Original | replace "vv" "v") -}}
{{- end -}}
{{- end -}}
{{- if or (gt ($version.Major | int) ($cluster.Major | int)) (and (eq ($version.Major | int) ($cluster.Major | int)) (gt ($version.Minor | int) ($cluster.Minor | int))) -}}
{{- fail (printf "scheduler.image.tag %s is newer than the cluster (v%d.%d.%d): a kube-scheduler newer than its API server waits forever on APIs the cluster lacks. Leave the tag empty to follow the cluster" .Values.scheduler.image.tag $cluster.Major $cluster.Minor $cluster.Patch) -}}
{{- end -}}
{{- printf "v%d.%d.%d" $version.Major $version.Minor $version.Patch -}}
{{- end -}}

{{/* The KubeSchedulerConfiguration apiVersion the resolved kube-scheduler reads. */}}
{{- define "topolane.schedulerConfigAPIVersion" -}}
{{- $v := semver (include "topolane.schedulerVersion" .) -}}
{{- if ge ($v.Minor | int) 25 -}}kubescheduler.config.k8s.io/v1{{- else -}}
{{- fail (printf "kube-scheduler v%s predates kubescheduler.config.k8s.io/v1 (1.25)" $v.Original) -}}
{{- end -}}
{{- end -}}

{{/* An image reference; call with (dict "image" .Values.x.image "tag" "default tag") */}}
{{- define "topolane.image" -}}
{{- $tag := default .tag .image.tag -}}
{{- if .image.digest -}}
{{- printf "%s:%s@%s" .image.repository $tag .image.digest -}}
{{- else -}}
{{- printf "%s:%s" .image.repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "topolane.leaseName" -}}
{{- default (first .Values.scheduler.schedulerNames) .Values.scheduler.leaderElection.leaseName -}}
{{- end -}}

{{- define "topolane.extenderURL" -}}
{{- printf "http://127.0.0.1:%d" (.Values.extender.port | int) -}}
{{- end -}}

{{- define "topolane.agentSocket" -}}
{{- printf "%s/agent.sock" (.Values.agent.hostPaths.socketDir | trimSuffix "/") -}}
{{- end -}}

{{/* The CNI network config of the NetworkAttachmentDefinition, as JSON. */}}
{{- define "topolane.networkConfig" -}}
{{- $conf := dict "cniVersion" .Values.networkAttachment.cniVersion "name" .Values.networkAttachment.name "type" "topolane-cni" "socket" (include "topolane.agentSocket" .) "ipam" (.Values.networkAttachment.ipam | default (dict "type" "host-local" "subnet" "10.56.0.0/16")) -}}
{{- toJson (merge $conf (deepCopy .Values.networkAttachment.extraConfig)) -}}
{{- end -}}

{{/*
The agent's host paths, as JSON: name, host path, mount path, read-only, mount propagation and
hostPath type (default DirectoryOrCreate). The first CNI bin dir, cni-bin-0, is where the
installer puts topolane-cni.
*/}}
{{- define "topolane.agentMounts" -}}
{{- $p := .Values.agent.hostPaths -}}
{{- $mounts := list
  (dict "name" "sys" "host" $p.sys "path" "/host/sys" "readOnly" true "type" "Directory")
  (dict "name" "cni-conf" "host" $p.cniConf "path" $p.cniConf "readOnly" true)
  (dict "name" "cni-data" "host" $p.cniData "path" $p.cniData)
  (dict "name" "pod-resources" "host" $p.podResources "path" $p.podResources "readOnly" true)
  (dict "name" "state" "host" $p.state "path" $p.state)
  (dict "name" "socket-dir" "host" $p.socketDir "path" $p.socketDir)
  (dict "name" "pods" "host" $p.pods "path" $p.pods) -}}
{{- $bins := uniq (prepend .Values.agent.cniBinDirs $p.cniBin) -}}
{{- range $i, $d := $bins -}}
{{- $mounts = append $mounts (dict "name" (printf "cni-bin-%d" $i) "host" $d "path" $d "readOnly" true) -}}
{{- end -}}
{{- $netns := uniq (prepend .Values.agent.netnsDirs $p.netns) -}}
{{- range $i, $d := $netns -}}
{{- $mounts = append $mounts (dict "name" (printf "netns-%d" $i) "host" $d "path" $d "readOnly" true "propagation" "HostToContainer") -}}
{{- end -}}
{{- if .Values.agent.nri.enabled -}}
{{- $mounts = append $mounts (dict "name" "nri" "host" (dir .Values.agent.nri.socket) "path" (dir .Values.agent.nri.socket)) -}}
{{- end -}}
{{- toJson $mounts -}}
{{- end -}}
