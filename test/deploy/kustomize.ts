/**
 * The slice of kustomize that deploy/kubernetes uses, to render what `kubectl apply -k` would apply
 * without kubectl: resources (files and kustomization folders), components, `images` (tag), `labels`
 * and inline JSON 6902 patches (add, replace, remove) with a group/version/kind/name target. Any other
 * kustomization field is an error, so a manifest change this renderer does not understand fails the
 * tests instead of being silently ignored.
 */
import { readFileSync, statSync } from "node:fs";
import path from "node:path";
import { parseAllDocuments } from "yaml";

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };

export interface Resource extends JsonObject {
  apiVersion: string;
  kind: string;
  metadata: JsonObject & { name: string };
}

/** Every YAML document of a file, parsed strictly (any YAML error throws). */
export function readYamlDocuments(file: string): Json[] {
  const docs = parseAllDocuments(readFileSync(file, "utf8"), { prettyErrors: true, uniqueKeys: true });
  return docs.map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${file}: ${doc.errors.map((e) => e.message).join("; ")}`);
    if (doc.warnings.length > 0) throw new Error(`${file}: ${doc.warnings.map((e) => e.message).join("; ")}`);
    return doc.toJS() as Json;
  });
}

const KNOWN = new Set(["apiVersion", "kind", "resources", "components", "images", "labels", "patches"]);

interface Kustomization {
  apiVersion?: string;
  kind?: string;
  resources?: string[];
  components?: string[];
  images?: Array<{ name: string; newTag?: string; newName?: string }>;
  labels?: Array<{ pairs: Record<string, string> }>;
  patches?: Array<{ target: { group?: string; version?: string; kind: string; name: string }; patch: string }>;
}

function isObject(value: Json | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function readKustomization(dir: string): Kustomization {
  const [doc] = readYamlDocuments(path.join(dir, "kustomization.yaml"));
  if (!isObject(doc)) throw new Error(`${dir}/kustomization.yaml is not a mapping`);
  for (const key of Object.keys(doc)) if (!KNOWN.has(key)) throw new Error(`${dir}/kustomization.yaml: field "${key}" is not understood by the test renderer`);
  return doc as unknown as Kustomization;
}

/** The resources `kubectl apply -k dir` applies, plus extra components (as a user's kustomization would add). */
export function render(dir: string, extraComponents: string[] = []): Resource[] {
  const k = readKustomization(dir);
  let resources: Resource[] = [];
  for (const entry of k.resources ?? []) {
    const target = path.resolve(dir, entry);
    if (statSync(target).isDirectory()) resources.push(...render(target));
    else resources.push(...readYamlDocuments(target).map((d) => asResource(d, target)));
  }
  for (const component of [...(k.components ?? []).map((c) => path.resolve(dir, c)), ...extraComponents]) {
    const c = readKustomization(component);
    if (c.kind !== "Component") throw new Error(`${component} is not a kustomize Component`);
    if (c.resources) for (const entry of c.resources) resources.push(...readYamlDocuments(path.resolve(component, entry)).map((d) => asResource(d, entry)));
    resources = applyPatches(resources, c.patches ?? []);
  }
  resources = applyPatches(resources, k.patches ?? []);
  for (const label of k.labels ?? []) for (const r of resources) r.metadata.labels = { ...(isObject(r.metadata.labels) ? r.metadata.labels : {}), ...label.pairs };
  for (const image of k.images ?? []) for (const r of resources) setImage(r, image);
  return resources;
}

function asResource(doc: Json, file: string): Resource {
  if (!isObject(doc) || typeof doc.apiVersion !== "string" || typeof doc.kind !== "string" || !isObject(doc.metadata) || typeof doc.metadata.name !== "string") {
    throw new Error(`${file}: a Kubernetes resource needs apiVersion, kind and metadata.name`);
  }
  return doc as Resource;
}

/** Containers and init containers of a workload's pod template. */
export function podSpec(r: Resource): JsonObject {
  const spec = r.spec as JsonObject;
  const template = spec.template as JsonObject;
  return template.spec as JsonObject;
}

function setImage(r: Resource, image: { name: string; newTag?: string; newName?: string }): void {
  if (r.kind !== "Deployment" && r.kind !== "Job") return;
  const pod = podSpec(r);
  for (const list of ["containers", "initContainers"]) {
    for (const c of (pod[list] as JsonObject[] | undefined) ?? []) {
      const [name, tag] = String(c.image).split(":");
      if (name !== image.name) continue;
      c.image = `${image.newName ?? name}:${image.newTag ?? tag ?? "latest"}`;
    }
  }
}

function applyPatches(resources: Resource[], patches: NonNullable<Kustomization["patches"]>): Resource[] {
  for (const p of patches) {
    const matches = resources.filter(
      (r) =>
        r.kind === p.target.kind &&
        r.metadata.name === p.target.name &&
        (p.target.group === undefined || r.apiVersion.startsWith(`${p.target.group}/`)) &&
        (p.target.version === undefined || r.apiVersion.endsWith(`/${p.target.version}`)),
    );
    if (matches.length !== 1) throw new Error(`patch target ${JSON.stringify(p.target)} matches ${matches.length} resources`);
    const [ops] = parseAllDocuments(p.patch).map((d) => d.toJS() as Json);
    if (!Array.isArray(ops)) throw new Error(`patch for ${p.target.name} is not a JSON 6902 list`);
    for (const op of ops) applyOperation(matches[0], op as JsonObject);
  }
  return resources;
}

function applyOperation(doc: JsonObject, op: JsonObject): void {
  const pointer = String(op.path)
    .split("/")
    .slice(1)
    .map((s) => s.replace(/~1/g, "/").replace(/~0/g, "~"));
  const last = pointer.pop();
  if (last === undefined) throw new Error("empty patch path");
  let parent: Json = doc;
  for (const key of pointer) {
    const next: Json | undefined = Array.isArray(parent) ? parent[Number(key)] : isObject(parent) ? parent[key] : undefined;
    if (next === undefined) throw new Error(`patch path ${String(op.path)}: no "${key}"`);
    parent = next;
  }
  const value = structuredClone(op.value as Json);
  if (Array.isArray(parent)) {
    const index = last === "-" ? parent.length : Number(last);
    if (op.op === "add") parent.splice(index, 0, value);
    else if (op.op === "replace" && index < parent.length) parent[index] = value;
    else if (op.op === "remove" && index < parent.length) parent.splice(index, 1);
    else throw new Error(`patch ${String(op.op)} ${String(op.path)}: index out of range`);
  } else if (isObject(parent)) {
    if (op.op === "add") parent[last] = value;
    else if (op.op === "replace" && last in parent) parent[last] = value;
    else if (op.op === "remove" && last in parent) delete parent[last];
    else throw new Error(`patch ${String(op.op)} ${String(op.path)}: nothing to ${String(op.op)}`);
  } else {
    throw new Error(`patch path ${String(op.path)} goes through a scalar`);
  }
}
