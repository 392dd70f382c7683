{{/* Values users add to the pods: ServiceAccounts, extra volumes. */}}

{{/* The ServiceAccount a component's pods run as: call with (dict "root" $ "component" "api"). */}}
{{- define "mlapi.serviceAccountName" -}}
{{- $sa := (index .root.Values .component).serviceAccount }}
{{- if $sa.create }}
{{- default (include "mlapi.componentName" .) $sa.name }}
{{- else }}
{{- default "default" $sa.name }}
{{- end }}
{{- end }}

{{/* extraVolumes / extraVolumeMounts of a component: call with (dict "root" $ "component" "api"). */}}
{{- define "mlapi.extraVolumes" -}}
{{- with (index .root.Values .component).extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "mlapi.extraVolumeMounts" -}}
{{- with (index .root.Values .component).extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}
