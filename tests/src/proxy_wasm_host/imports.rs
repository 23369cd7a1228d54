//! The ABI's host functions: what the filter's imports do in this host, and the
//! helpers that move bytes in and out of the guest's memory.

use super::*;

fn memory(caller: &mut C) -> Result<wasmtime::Memory> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m),
        _ => bail!("no exported memory"),
    }
}

fn read(caller: &mut C, ptr: i32, len: i32) -> Result<Vec<u8>> {
    let mem = memory(caller)?;
    let mut buf = vec![0u8; len as u32 as usize];
    mem.read(&*caller, ptr as u32 as usize, &mut buf)?;
    Ok(buf)
}

fn write(caller: &mut C, ptr: i32, bytes: &[u8]) -> Result<()> {
    let mem = memory(caller)?;
    mem.write(&mut *caller, ptr as u32 as usize, bytes)?;
    Ok(())
}

/// Copies `data` into guest memory allocated by the guest and returns it through the
/// two out-pointers, as the ABI does.
fn give(caller: &mut C, data: &[u8], ptr_out: i32, size_out: i32) -> Result<()> {
    let ptr = if data.is_empty() {
        0
    } else {
        let alloc = match caller.get_export("proxy_on_memory_allocate") {
            Some(Extern::Func(f)) => f.typed::<i32, i32>(&*caller)?,
            _ => bail!("no proxy_on_memory_allocate"),
        };
        let ptr = alloc.call(&mut *caller, data.len() as i32)?;
        write(caller, ptr, data)?;
        ptr
    };
    write(caller, ptr_out, &ptr.to_le_bytes())?;
    write(caller, size_out, &(data.len() as u32).to_le_bytes())
}

/// A lookup's answer as the ABI gives it: the value through the out-pointers and OK, or
/// NOT_FOUND.
fn give_found(c: &mut C, found: Option<&[u8]>, ptr_out: i32, size_out: i32) -> Result<i32> {
    match found {
        Some(value) => {
            give(c, value, ptr_out, size_out)?;
            Ok(OK)
        }
        None => Ok(NOT_FOUND),
    }
}

/// Defines every import the filter may call on `linker`.
pub(super) fn define_host(linker: &mut Linker<HostState>) -> Result<()> {
    linker.func_wrap(
        "env",
        "proxy_log",
        |mut c: C, level: i32, ptr: i32, len: i32| -> Result<i32> {
            count_call(&mut c, "proxy_log");
            let text = String::from_utf8_lossy(&read(&mut c, ptr, len)?).into_owned();
            c.data_mut().logs.push((level, text));
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_current_time_nanoseconds",
        |mut c: C, out: i32| -> Result<i32> {
            count_call(&mut c, "proxy_get_current_time_nanoseconds");
            let now = c.data().clock.0.load(Ordering::SeqCst);
            write(&mut c, out, &now.to_le_bytes())?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_buffer_bytes",
        |mut c: C, kind: i32, start: i32, max: i32, ptr_out: i32, size_out: i32| -> Result<i32> {
            count_call(&mut c, "proxy_get_buffer_bytes");
            if kind != PLUGIN_CONFIGURATION {
                return Ok(NOT_FOUND);
            }
            let config = c.data().config.clone();
            let start = (start as usize).min(config.len());
            let end = start.saturating_add(max as u32 as usize).min(config.len());
            give(&mut c, &config[start..end], ptr_out, size_out)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_pairs",
        |mut c: C, map: i32, ptr_out: i32, size_out: i32| -> Result<i32> {
            count_call(&mut c, "proxy_get_header_map_pairs");
            if map != REQUEST_HEADERS {
                return Ok(BAD_ARGUMENT);
            }
            let bytes = edge_filter::header_map::serialize_header_map(&c.data().headers);
            give(&mut c, &bytes, ptr_out, size_out)?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_header_map_value",
        |mut c: C, _map: i32, kp: i32, kl: i32, ptr_out: i32, size_out: i32| -> Result<i32> {
            count_call(&mut c, "proxy_get_header_map_value");
            let key = read(&mut c, kp, kl)?;
            let found = c
                .data()
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(&key))
                .map(|(_, v)| v.clone());
            give_found(&mut c, found.as_deref(), ptr_out, size_out)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_remove_header_map_value",
        |mut c: C, _map: i32, kp: i32, kl: i32| -> Result<i32> {
            count_call(&mut c, "proxy_remove_header_map_value");
            let key = read(&mut c, kp, kl)?;
            c.data_mut()
                .headers
                .retain(|(n, _)| !n.eq_ignore_ascii_case(&key));
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_replace_header_map_value",
        |mut c: C, _map: i32, kp: i32, kl: i32, vp: i32, vl: i32| -> Result<i32> {
            count_call(&mut c, "proxy_replace_header_map_value");
            let key = read(&mut c, kp, kl)?;
            let value = read(&mut c, vp, vl)?;
            let headers = &mut c.data_mut().headers;
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(&key));
            headers.push((key, value));
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_add_header_map_value",
        |mut c: C, _map: i32, kp: i32, kl: i32, vp: i32, vl: i32| -> Result<i32> {
            count_call(&mut c, "proxy_add_header_map_value");
            let key = read(&mut c, kp, kl)?;
            let value = read(&mut c, vp, vl)?;
            c.data_mut().headers.push((key, value));
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_property",
        |mut c: C, pp: i32, pl: i32, ptr_out: i32, size_out: i32| -> Result<i32> {
            count_call(&mut c, "proxy_get_property");
            let path = String::from_utf8_lossy(&read(&mut c, pp, pl)?)
                .trim_end_matches('\0')
                .to_owned();
            let found = c.data().properties.get(&path).cloned();
            give_found(&mut c, found.as_deref(), ptr_out, size_out)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_get_shared_data",
        |mut c: C, kp: i32, kl: i32, ptr_out: i32, size_out: i32, cas_out: i32| -> Result<i32> {
            count_call(&mut c, "proxy_get_shared_data");
            let key = String::from_utf8_lossy(&read(&mut c, kp, kl)?).into_owned();
            let entry = c.data().shared.0.lock().unwrap().0.get(&key).cloned();
            match entry {
                Some((value, cas)) => {
                    give(&mut c, &value, ptr_out, size_out)?;
                    write(&mut c, cas_out, &cas.to_le_bytes())?;
                    Ok(OK)
                }
                None => Ok(NOT_FOUND),
            }
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_shared_data",
        |mut c: C, kp: i32, kl: i32, vp: i32, vl: i32, cas: i32| -> Result<i32> {
            count_call(&mut c, "proxy_set_shared_data");
            let key = String::from_utf8_lossy(&read(&mut c, kp, kl)?).into_owned();
            let value = read(&mut c, vp, vl)?;
            let shared = c.data().shared.clone();
            let mut guard = shared.0.lock().unwrap();
            let (data, next) = &mut *guard;
            if let Some((_, current)) = data.get(&key) {
                if cas != 0 && cas as u32 != *current {
                    return Ok(CAS_MISMATCH);
                }
            }
            *next += 1;
            data.insert(key, (value, *next));
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_send_local_response",
        |mut c: C,
         status: i32,
         _dp: i32,
         _dl: i32,
         bp: i32,
         bl: i32,
         hp: i32,
         hl: i32,
         _grpc: i32|
         -> Result<i32> {
            count_call(&mut c, "proxy_send_local_response");
            let body = read(&mut c, bp, bl)?;
            let headers = edge_filter::header_map::parse_header_map(&read(&mut c, hp, hl)?)
                .unwrap_or_default()
                .into_iter()
                .map(|(n, v)| {
                    (
                        String::from_utf8_lossy(n).into_owned(),
                        String::from_utf8_lossy(v).into_owned(),
                    )
                })
                .collect();
            c.data_mut().reply = Some(LocalResponse {
                status: status as u32,
                headers,
                body,
            });
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_define_metric",
        |mut c: C, _kind: i32, np: i32, nl: i32, id_out: i32| -> Result<i32> {
            count_call(&mut c, "proxy_define_metric");
            let name = String::from_utf8_lossy(&read(&mut c, np, nl)?).into_owned();
            let names = &mut c.data_mut().metric_names;
            let id = match names.iter().position(|n| *n == name) {
                Some(i) => i,
                None => {
                    names.push(name);
                    names.len() - 1
                }
            } as u32;
            write(&mut c, id_out, &id.to_le_bytes())?;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_increment_metric",
        |mut c: C, id: i32, offset: i64| -> Result<i32> {
            count_call(&mut c, "proxy_increment_metric");
            let Some(name) = c.data().metric_names.get(id as usize).cloned() else {
                return Ok(NOT_FOUND);
            };
            *c.data()
                .metric_values
                .lock()
                .unwrap()
                .entry(name)
                .or_default() += offset;
            Ok(OK)
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_set_tick_period_milliseconds",
        |mut c: C, period: i32| -> i32 {
            count_call(&mut c, "proxy_set_tick_period_milliseconds");
            c.data_mut().tick_ms = Some(period as u32);
            OK
        },
    )?;
    linker.func_wrap(
        "env",
        "proxy_http_call",
        |mut c: C,
         up: i32,
         ul: i32,
         hp: i32,
         hl: i32,
         bp: i32,
         bl: i32,
         _tp: i32,
         _tl: i32,
         _timeout: i32,
         token_out: i32|
         -> Result<i32> {
            count_call(&mut c, "proxy_http_call");
            let upstream = String::from_utf8_lossy(&read(&mut c, up, ul)?).into_owned();
            let headers = read(&mut c, hp, hl)?;
            let body = read(&mut c, bp, bl)?;
            let calls = &mut c.data_mut().http_calls;
            calls.push((upstream, headers, body));
            let token = calls.len() as u32;
            write(&mut c, token_out, &token.to_le_bytes())?;
            Ok(OK)
        },
    )?;
    // WASI, as little as the Rust standard library asks for.
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "environ_sizes_get",
        |mut c: C, count: i32, size: i32| -> Result<i32> {
            write(&mut c, count, &0u32.to_le_bytes())?;
            write(&mut c, size, &0u32.to_le_bytes())?;
            Ok(0)
        },
    )?;
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "environ_get",
        |_c: C, _a: i32, _b: i32| -> i32 { 0 },
    )?;
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "fd_write",
        |mut c: C, _fd: i32, iovs: i32, iovs_len: i32, written: i32| -> Result<i32> {
            let mut total = 0u32;
            let mut text = Vec::new();
            for i in 0..iovs_len {
                let iov = read(&mut c, iovs + i * 8, 8)?;
                let ptr = i32::from_le_bytes(iov[..4].try_into().unwrap());
                let len = i32::from_le_bytes(iov[4..].try_into().unwrap());
                text.extend(read(&mut c, ptr, len)?);
                total += len as u32;
            }
            c.data_mut()
                .logs
                .push((-1, String::from_utf8_lossy(&text).into_owned()));
            write(&mut c, written, &total.to_le_bytes())?;
            Ok(0)
        },
    )?;
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "proc_exit",
        |_c: C, code: i32| -> Result<()> { bail!("proc_exit({code}): the module aborted") },
    )?;
    Ok(())
}
