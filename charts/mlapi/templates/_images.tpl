{{/* Images and pull secrets, in the manner of the grafana and prometheus-community charts. */}}

{{/*
[registry/]repository:tag[@digest]. global.imageRegistry, when set, replaces every image's
registry (a mirror or an air-gapped registry); a digest pins the image whatever the tag says.
Call with (dict "root" $ "image" <an image block> "tag" <the tag when the block has none>).
*/}}
{{- define "mlapi.imageRef" -}}
{{- $global := .root.Values.global | default dict }}
{{- $registry := default .image.registry $global.imageRegistry }}
{{- $ref := .image.repository }}
{{- if $registry }}{{ $ref = printf "%s/%s" (trimSuffix "/" $registry) $ref }}{{ end }}
{{- $ref = printf "%s:%s" $ref (default .tag .image.tag | toString) }}
{{- if .image.digest }}{{ $ref = printf "%s@%s" $ref .image.digest }}{{ end }}
{{- $ref }}
{{- end }}

{{/* The image of a component: call with (dict "root" $ "component" "api"). */}}
{{- define "mlapi.image" -}}
{{- $c := index .root.Values .component }}
{{- include "mlapi.imageRef" (dict "root" .root "image" $c.image "tag" (default .root.Chart.AppVersion .root.Values.image.tag)) }}
{{- end }}

{{/* The `helm test` pod's image: tests.image when it names a repository, else the API's. */}}
{{- define "mlapi.testImage" -}}
{{- if .Values.tests.image.repository }}
{{- include "mlapi.imageRef" (dict "root" . "image" .Values.tests.image "tag" (include "mlapi.imageTag" (dict "root" . "component" "api"))) }}
{{- else }}
{{- include "mlapi.image" (dict "root" . "component" "api") }}
{{- end }}
{{- end }}

{{- define "mlapi.imageTag" -}}
{{- $c := index .root.Values .component }}
{{- default (default .root.Chart.AppVersion .root.Values.image.tag) $c.image.tag }}
{{- end }}

{{/*
imagePullSecrets of every mlapi pod: global.imagePullSecrets, then imagePullSecrets, each
given as names or as {name: ...}; nothing when both are empty.
*/}}
{{- define "mlapi.imagePullSecrets" -}}
{{- $global := .Values.global | default dict }}
{{- $names := list }}
{{- range concat ($global.imagePullSecrets | default list) (.Values.imagePullSecrets | default list) }}
{{- if kindIs "string" . }}{{ $names = append $names . }}{{ else }}{{ $names = append $names .name }}{{ end }}
{{- end }}
{{- with $names | uniq }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end }}
