// The shape of a protobuf API as ZITADEL's clients see it on the wire: services, their RPCs and
// REST rules, and every message and enum the RPCs reach, normalized for comparison.
import { type DescEnum, type DescField, type DescMessage, type DescMethod, type DescService, getOption, hasOption, ScalarType } from "@bufbuild/protobuf";
import { http } from "../../gen/google/api/annotations_pb.js";

/** FieldShape is what makes two fields the same on the wire and in JSON. */
export interface FieldShape {
  readonly name: string;
  readonly jsonName: string;
  /** "string", "uint64", "enum zitadel.x.Y", "message zitadel.x.Z", "map<string, string>". */
  readonly type: string;
  /** "singular", "optional" (proto3 optional), "repeated" or "map". */
  readonly label: string;
  /** The real (not synthetic) oneof the field belongs to, "" for none. */
  readonly oneof: string;
}

/** MessageShape is a message's fields by number. */
export interface MessageShape {
  readonly kind: "message";
  readonly fields: ReadonlyMap<number, FieldShape>;
}

/** EnumShape is an enum's value names by number. */
export interface EnumShape {
  readonly kind: "enum";
  readonly values: ReadonlyMap<number, string>;
}

/** RestRuleShape is one google.api.http binding: "POST /v2/users body=*". */
export type RestRuleShape = string;

/** MethodShape is an RPC as clients call it. */
export interface MethodShape {
  readonly input: string;
  readonly output: string;
  readonly kind: string;
  /** The primary binding first, then the additional bindings; empty without google.api.http. */
  readonly rest: readonly RestRuleShape[];
}

/** ApiShape is a set of services and the types their RPCs reach. */
export interface ApiShape {
  /** Methods by "pkg.Service/Method". */
  readonly methods: ReadonlyMap<string, MethodShape>;
  /** Messages and enums by type name. */
  readonly types: ReadonlyMap<string, MessageShape | EnumShape>;
}

/**
 * apiShape returns the shape of the given methods (default: all methods of the
 * services) and of every message and enum they reach, well-known types excluded.
 */
export function apiShape(services: readonly DescService[], onlyMethods?: (m: DescMethod) => boolean): ApiShape {
  const methods = new Map<string, MethodShape>();
  const types = new Map<string, MessageShape | EnumShape>();
  const visitEnum = (e: DescEnum) => {
    if (types.has(e.typeName)) return;
    types.set(e.typeName, { kind: "enum", values: new Map(e.values.map((v) => [v.number, v.name])) });
  };
  const visitMessage = (m: DescMessage) => {
    if (types.has(m.typeName) || m.typeName.startsWith("google.protobuf.")) return;
    const fields = new Map<number, FieldShape>();
    types.set(m.typeName, { kind: "message", fields });
    for (const f of m.fields) {
      fields.set(f.number, fieldShape(f));
      for (const t of referencedTypes(f)) {
        if (t.kind === "enum") visitEnum(t);
        else visitMessage(t);
      }
    }
  };
  for (const service of services) {
    for (const method of service.methods) {
      if (onlyMethods !== undefined && !onlyMethods(method)) continue;
      methods.set(`${service.typeName}/${method.name}`, {
        input: method.input.typeName,
        output: method.output.typeName,
        kind: method.methodKind,
        rest: restRules(method),
      });
      visitMessage(method.input);
      visitMessage(method.output);
    }
  }
  return { methods, types };
}

/** restRules returns the google.api.http bindings of a method, primary first. */
export function restRules(method: DescMethod): RestRuleShape[] {
  if (!hasOption(method, http)) return [];
  const rule = getOption(method, http);
  const one = (r: typeof rule) => (r.pattern.case === undefined ? "" : `${r.pattern.case === "custom" ? r.pattern.value.kind : r.pattern.case.toUpperCase()} ${r.pattern.case === "custom" ? r.pattern.value.path : r.pattern.value} body=${r.body}`);
  return [one(rule), ...rule.additionalBindings.map(one)];
}

function referencedTypes(f: DescField): (DescMessage | DescEnum)[] {
  switch (f.fieldKind) {
    case "message":
      return [f.message];
    case "enum":
      return [f.enum];
    case "list":
      return f.listKind === "message" ? [f.message] : f.listKind === "enum" ? [f.enum] : [];
    case "map":
      return f.mapKind === "message" ? [f.message] : f.mapKind === "enum" ? [f.enum] : [];
    default:
      return [];
  }
}

function fieldShape(f: DescField): FieldShape {
  const scalar = (s: ScalarType) => ScalarType[s]!.toLowerCase();
  let type: string;
  let label: string;
  switch (f.fieldKind) {
    case "scalar":
      type = scalar(f.scalar);
      label = f.proto.proto3Optional ? "optional" : "singular";
      break;
    case "enum":
      type = `enum ${f.enum.typeName}`;
      label = f.proto.proto3Optional ? "optional" : "singular";
      break;
    case "message":
      type = `message ${f.message.typeName}`;
      label = f.proto.proto3Optional ? "optional" : "singular";
      break;
    case "list":
      type = f.listKind === "scalar" ? scalar(f.scalar) : f.listKind === "enum" ? `enum ${f.enum.typeName}` : `message ${f.message.typeName}`;
      label = "repeated";
      break;
    case "map":
      type = `map<${scalar(f.mapKey)}, ${f.mapKind === "scalar" ? scalar(f.scalar) : f.mapKind === "enum" ? `enum ${f.enum.typeName}` : `message ${f.message.typeName}`}>`;
      label = "map";
      break;
  }
  return { name: f.name, jsonName: f.jsonName, type, label, oneof: f.oneof?.name ?? "" };
}

/** Difference is one way in which a project API differs from ZITADEL's. */
export interface Difference {
  /** "pkg.Service/Method", "pkg.Message.field_name (7)" or "pkg.Enum". */
  readonly where: string;
  readonly zitadel: string;
  readonly project: string;
}

/**
 * missingOrDifferent lists everything of `zitadel` that `project` lacks or has
 * differently: methods (types, kind, REST rules), and the fields and enum
 * values of every type `zitadel` reaches. What the project has in addition is
 * not a difference here (see additions).
 */
export function missingOrDifferent(zitadel: ApiShape, project: ApiShape, restOf: (methodName: string, rules: readonly string[]) => readonly string[] = (_, r) => r): Difference[] {
  const out: Difference[] = [];
  for (const [name, z] of zitadel.methods) {
    const p = project.methods.get(name);
    const zText = `${z.kind} ${z.input} -> ${z.output} [${z.rest.join("; ")}]`;
    const pText = p === undefined ? "missing" : `${p.kind} ${p.input} -> ${p.output} [${restOf(name, p.rest).join("; ")}]`;
    if (zText !== pText) out.push({ where: name, zitadel: zText, project: pText });
  }
  for (const [typeName, z] of zitadel.types) {
    const p = project.types.get(typeName);
    if (p === undefined || p.kind !== z.kind) {
      out.push({ where: typeName, zitadel: z.kind, project: p === undefined ? "missing" : p.kind });
      continue;
    }
    if (z.kind === "enum") {
      const zText = [...z.values].map(([n, v]) => `${v}=${n}`).join(", ");
      const pText = [...(p as EnumShape).values].map(([n, v]) => `${v}=${n}`).join(", ");
      if (zText !== pText) out.push({ where: typeName, zitadel: zText, project: pText });
      continue;
    }
    for (const [number, zf] of z.fields) {
      const pf = (p as MessageShape).fields.get(number);
      const zText = JSON.stringify(zf);
      const pText = pf === undefined ? "missing" : JSON.stringify(pf);
      if (zText !== pText) out.push({ where: `${typeName}.${zf.name} (${number})`, zitadel: zText, project: pText });
    }
  }
  return out;
}

/** Additions are what the project has beyond ZITADEL's API. */
export interface Additions {
  /** Methods ZITADEL does not have. */
  readonly methods: string[];
  /** Fields the project adds to ZITADEL's messages: "pkg.Message.field (1000)". */
  readonly fields: { readonly where: string; readonly number: number; readonly name: string }[];
  /** Enum values the project adds to ZITADEL's enums. */
  readonly enumValues: string[];
  /** Messages and enums ZITADEL does not have. */
  readonly types: string[];
}

/** additions lists what `project` has beyond `zitadel`. */
export function additions(zitadel: ApiShape, project: ApiShape): Additions {
  const out: Additions = { methods: [], fields: [], enumValues: [], types: [] };
  for (const name of project.methods.keys()) if (!zitadel.methods.has(name)) out.methods.push(name);
  for (const [typeName, p] of project.types) {
    const z = zitadel.types.get(typeName);
    if (z === undefined) {
      out.types.push(typeName);
    } else if (p.kind === "message" && z.kind === "message") {
      for (const [number, f] of p.fields) {
        if (!z.fields.has(number)) out.fields.push({ where: `${typeName}.${f.name} (${number})`, number, name: f.name });
      }
    } else if (p.kind === "enum" && z.kind === "enum") {
      for (const [number, v] of p.values) if (!z.values.has(number)) out.enumValues.push(`${typeName}.${v} (${number})`);
    }
  }
  return out;
}

/**
 * restPathMatches tells whether a concrete path matches a google.api.http path
 * template ("/v2/actions/targets/{id}"; a variable matches one segment, `{x=**}` the rest).
 */
export function restPathMatches(template: string, path: string): boolean {
  const t = template.split("/");
  const p = path.split("/");
  for (let i = 0; i < t.length; i++) {
    const seg = t[i]!;
    if (/^\{[^}]*=\*\*\}$/.test(seg)) return p.length > i;
    if (i >= p.length) return false;
    if (seg.startsWith("{") && seg.endsWith("}")) {
      if (p[i] === "") return false;
      continue;
    }
    if (seg !== p[i]) return false;
  }
  return t.length === p.length;
}
