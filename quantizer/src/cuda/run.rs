//! Host orchestration of one batch on the device: upload every matrix into
//! its arena, run the kernels over all matrices at once (a launch per
//! stage, not per matrix or column), factor the Hessians with cuSOLVER
//! (damping retried per matrix as gptq.rs does), sweep, and read back.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use cudarc::cublas::{sys as blas, CudaBlas};
use cudarc::cusolver::{sys as solver, DnHandle};
use cudarc::driver::{
    sys::CUfunction_attribute, CudaContext, CudaFunction, CudaSlice, CudaStream, DevicePtrMut,
    LaunchConfig, PushKernelArg,
};
use half::f16;

use crate::gptq::{next_damp, MAX_DAMP_ATTEMPTS};
use crate::model::MatrixCodes;

use super::compile::{ptx_for, KERNELS};
use super::error::CudaError;
use super::layout::{
    column_order, grid, plan_layout, sweep_tasks, JobSpec, MatDesc, PackDesc, SWEEP_SHARED_BYTES,
    SWEEP_THREADS,
};

/// Flags the kernels set (kernels/common.cuh).
const FLAG_NONFINITE_W: u32 = 1;
const FLAG_SCALE_OVERFLOW: u32 = 2;
const FLAG_BAD_HESSIAN: u32 = 4;

/// A matrix for the device: its settings, its weights (row-major) and, when
/// the settings need one, its Hessian (`cols x cols`).
pub struct Job<'a> {
    pub spec: JobSpec,
    pub values: &'a [f32],
    pub hessian: Option<&'a [f32]>,
}

/// What became of one job: its codes, or why the CPU must redo it.
pub type JobOutcome = Result<MatrixCodes, String>;

/// A batch's results, in job order, and its times.
pub struct BatchRun {
    pub outcomes: Vec<JobOutcome>,
    /// Kernels and factorizations, from device events (uploads excluded).
    pub device_ms: f64,
    /// The whole batch, host to host (uploads and downloads included).
    pub host_ms: f64,
}

/// An initialized device: context, stream, library handles, kernels.
pub struct Device {
    pub name: String,
    pub arch: String,
    stream: Arc<CudaStream>,
    blas: CudaBlas,
    solver: DnHandle,
    kernels: HashMap<&'static str, CudaFunction>,
}

fn lib_err(library: &'static str, during: &'static str) -> impl Fn(String) -> CudaError {
    move |status| CudaError::Library {
        library,
        during,
        status,
    }
}

impl Device {
    /// Opens device `ordinal`: checks the libraries first (cudarc's loaders
    /// panic on a missing one), compiles the kernels for its architecture
    /// (cached per process) and loads them.
    pub fn open(ordinal: usize) -> Result<Device, CudaError> {
        super::probe::require_runtime()?;
        let ctx = CudaContext::new(ordinal).map_err(CudaError::driver("creating a context"))?;
        let (major, minor) = ctx
            .compute_capability()
            .map_err(CudaError::driver("reading the compute capability"))?;
        let arch = format!("sm_{major}{minor}");
        let name = ctx
            .name()
            .map_err(CudaError::driver("reading the device name"))?;
        let stream = ctx.default_stream();
        let ptx = ptx_for(&arch)?;
        let module = ctx
            .load_module(cudarc::nvrtc::Ptx::from_src(ptx))
            .map_err(CudaError::driver("loading the kernels' PTX"))?;
        let mut kernels = HashMap::new();
        for name in KERNELS {
            let f = module
                .load_function(name)
                .map_err(|_| CudaError::MissingKernel(name))?;
            kernels.insert(name, f);
        }
        if let Some(sweep) = kernels.get("pgq_gptq_sweep") {
            sweep
                .set_attribute(
                    CUfunction_attribute::CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                    SWEEP_SHARED_BYTES as i32,
                )
                .map_err(CudaError::driver("raising the sweep's shared memory"))?;
        }
        let blas = CudaBlas::new(stream.clone())
            .map_err(|e| lib_err("cuBLAS", "creating a handle")(format!("{e:?}")))?;
        let solver = DnHandle::new(stream.clone())
            .map_err(|e| lib_err("cuSOLVER", "creating a handle")(format!("{e:?}")))?;
        Ok(Device {
            name,
            arch,
            stream,
            blas,
            solver,
            kernels,
        })
    }

    fn kernel(&self, name: &'static str) -> Result<&CudaFunction, CudaError> {
        self.kernels.get(name).ok_or(CudaError::MissingKernel(name))
    }

    fn upload<T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits>(
        &self,
        host: &[T],
    ) -> Result<CudaSlice<T>, CudaError> {
        if host.is_empty() {
            // A one-element buffer so that every kernel argument is valid.
            return self.zeros(1);
        }
        self.stream
            .clone_htod(host)
            .map_err(CudaError::driver("copying to the device"))
    }

    fn zeros<T: cudarc::driver::DeviceRepr + cudarc::driver::ValidAsZeroBits>(
        &self,
        len: u64,
    ) -> Result<CudaSlice<T>, CudaError> {
        let len =
            usize::try_from(len.max(1)).map_err(|_| CudaError::TooLarge { what: "a buffer" })?;
        self.stream
            .alloc_zeros(len)
            .map_err(CudaError::driver("allocating device memory"))
    }

    fn download<T: cudarc::driver::DeviceRepr + Default + Clone>(
        &self,
        device: &CudaSlice<T>,
    ) -> Result<Vec<T>, CudaError> {
        let host = self
            .stream
            .clone_dtoh(device)
            .map_err(CudaError::driver("copying from the device"))?;
        self.stream
            .synchronize()
            .map_err(CudaError::driver("copying from the device"))?;
        Ok(host)
    }

    /// Quantizes `jobs` (each supported, see [`JobSpec::unsupported`]).
    pub fn run(&self, jobs: &[Job<'_>]) -> Result<BatchRun, CudaError> {
        let started = Instant::now();
        let specs: Vec<JobSpec> = jobs.iter().map(|j| j.spec.clone()).collect();
        let layout = plan_layout(&specs)?;
        let s = &layout.sizes;
        let stream = &self.stream;
        let d2 = |e| CudaError::driver("copying to the device")(e);

        // Uploads, each tensor straight into its place in the arena.
        let mut weights = self.zeros::<f32>(s.weights)?;
        let mut hessians = self.zeros::<f32>(s.hessians)?;
        let mut dead_host = vec![0u8; s.dead as usize];
        let mut perm_host = vec![0u32; s.perm as usize];
        let mut mean_diag = vec![0.0f64; jobs.len()];
        for (job, d) in jobs.iter().zip(&layout.descs) {
            let n = job.values.len();
            let mut dst = weights.slice_mut(d.w_off as usize..d.w_off as usize + n);
            stream.memcpy_htod(job.values, &mut dst).map_err(d2)?;
            if let (Some(h), true) = (job.hessian, d.h_off != super::layout::NONE) {
                let mut dst = hessians.slice_mut(d.h_off as usize..d.h_off as usize + h.len());
                stream.memcpy_htod(h, &mut dst).map_err(d2)?;
            }
            if let (Some(g), Some(h)) = (job.spec.gptq, job.hessian) {
                let cols = job.spec.cols;
                let diag: Vec<f32> = (0..cols).map(|j| h[j * cols + j]).collect();
                let (dead, perm, mean) = column_order(&diag, g.act_order);
                dead_host[d.dead_off as usize..][..cols].copy_from_slice(&dead);
                perm_host[d.perm_off as usize..][..cols].copy_from_slice(&perm);
                mean_diag[d.id as usize] = mean;
            }
        }
        let dead = self.upload(&dead_host)?;
        let perm = self.upload(&perm_host)?;
        let percentiles = self.upload(&layout.percentiles)?;
        let descs = self.upload(&layout.descs)?;
        let mut flags = self.zeros::<u32>(jobs.len() as u64)?;
        let mut scales = self.zeros::<f32>(s.scales)?;
        let mut scale_bits = self.zeros::<u16>(s.scales)?;
        let mut codes = self.zeros::<i8>(s.codes)?;
        let mut scores = self.zeros::<f64>(s.scores)?;
        let mut cand_bits = self.zeros::<u16>(s.scores)?;
        let mut choices = self.zeros::<u8>(s.choices)?;
        let mut work = self.zeros::<f32>(s.work)?;
        let mut factors = self.zeros::<f64>(s.factors)?;
        let mut ufac = self.zeros::<f32>(s.ufac)?;
        // Poisoned outputs: -128 is no code of any width, 0xFFFF is an fp16
        // NaN; an entry left so was never written (checked below).
        self.poison(&mut codes, 0x80)?;
        self.poison(&mut scale_bits, 0xFF)?;

        let begin = stream
            .record_event(None)
            .map_err(CudaError::driver("recording an event"))?;
        let count = layout.descs.len();
        let max_units = layout
            .descs
            .iter()
            .map(|d| d.rows * d.groups)
            .max()
            .unwrap_or(0);
        let max_elems = layout
            .descs
            .iter()
            .map(|d| d.rows * d.cols)
            .max()
            .unwrap_or(0);
        let max_square = layout
            .descs
            .iter()
            .map(|d| d.cols * d.cols)
            .max()
            .unwrap_or(0);
        let launch = |name: &'static str, cfg: LaunchConfig| -> Result<_, CudaError> {
            Ok((self.kernel(name)?, cfg))
        };
        let cfg = |work: u64, per_block: u64, threads: u32, shared: u32| LaunchConfig {
            grid_dim: grid(work, per_block, count),
            block_dim: (threads, 1, 1),
            shared_mem_bytes: shared,
        };

        // Checks and scales.
        if s.hessians > 0 {
            let (f, c) = launch("pgq_hessian_check", cfg(max_square, 256 * 8, 256, 0))?;
            let mut b = stream.launch_builder(f);
            b.arg(&descs).arg(&hessians).arg(&mut flags);
            // SAFETY: arguments match the kernel's signature; every offset
            // was laid out inside its arena.
            unsafe { b.launch(c) }.map_err(CudaError::driver("launching pgq_hessian_check"))?;
        }
        {
            let (f, c) = launch("pgq_scales_fixed", cfg(max_units, 8, 256, 0))?;
            let mut b = stream.launch_builder(f);
            b.arg(&descs)
                .arg(&weights)
                .arg(&dead)
                .arg(&mut scales)
                .arg(&mut scale_bits)
                .arg(&mut flags);
            // SAFETY: as above.
            unsafe { b.launch(c) }.map_err(CudaError::driver("launching pgq_scales_fixed"))?;
        }
        if layout.sort_len > 0 {
            let shared = layout.sort_len * 4;
            let (f, c) = launch("pgq_clip_candidates", cfg(max_units, 1, 256, shared))?;
            let mut b = stream.launch_builder(f);
            b.arg(&descs)
                .arg(&weights)
                .arg(&dead)
                .arg(&hessians)
                .arg(&percentiles)
                .arg(&mut scores)
                .arg(&mut cand_bits)
                .arg(&mut flags)
                .arg(&layout.sort_len);
            // SAFETY: as above; shared memory holds sort_len floats.
            unsafe { b.launch(c) }.map_err(CudaError::driver("launching pgq_clip_candidates"))?;
            let (f, c) = launch("pgq_clip_pick", cfg(1, 1, 256, 0))?;
            let mut b = stream.launch_builder(f);
            b.arg(&descs)
                .arg(&scores)
                .arg(&cand_bits)
                .arg(&mut scales)
                .arg(&mut scale_bits)
                .arg(&mut choices);
            // SAFETY: as above.
            unsafe { b.launch(c) }.map_err(CudaError::driver("launching pgq_clip_pick"))?;
        }
        if layout.descs.iter().any(|d| d.method == 0) {
            let (f, c) = launch("pgq_rtn_codes", cfg(max_elems, 256 * 16, 256, 0))?;
            let mut b = stream.launch_builder(f);
            b.arg(&descs).arg(&weights).arg(&scales).arg(&mut codes);
            // SAFETY: as above.
            unsafe { b.launch(c) }.map_err(CudaError::driver("launching pgq_rtn_codes"))?;
        }

        // GPTQ: the factor of each Hessian, damping retried per matrix.
        let flags_now = self.download(&flags)?;
        let mut outcome: Vec<Option<String>> = flags_now.iter().map(|&f| flag_reason(f)).collect();
        let mut damp: Vec<f64> = specs
            .iter()
            .map(|j| j.gptq.map_or(0.0, |g| g.damp))
            .collect();
        let mut attempts = vec![0u32; jobs.len()];
        let mut active: Vec<usize> = (0..jobs.len())
            .filter(|&i| layout.descs[i].method == 1 && outcome[i].is_none())
            .collect();
        if !active.is_empty() {
            let n_max = layout.max_gptq_cols;
            let lwork = self.potrf_workspace(n_max, &mut factors)?;
            let mut workspace = self.zeros::<f64>(lwork as u64)?;
            let mut info = self.zeros::<i32>(jobs.len() as u64)?;
            while !active.is_empty() {
                let round: Vec<MatDesc> = active
                    .iter()
                    .map(|&i| {
                        attempts[i] += 1;
                        MatDesc {
                            damp_add: damp[i] * mean_diag[i],
                            ..layout.descs[i]
                        }
                    })
                    .collect();
                let round_descs = self.upload(&round)?;
                let mut attempt_flags = self.zeros::<u32>(jobs.len() as u64)?;
                let square = round.iter().map(|d| d.cols * d.cols).max().unwrap_or(0);
                let rc = |work: u64, per: u64| LaunchConfig {
                    grid_dim: grid(work, per, round.len()),
                    block_dim: (256, 1, 1),
                    shared_mem_bytes: 0,
                };
                let mut b = stream.launch_builder(self.kernel("pgq_hessian_prepare")?);
                b.arg(&round_descs)
                    .arg(&hessians)
                    .arg(&perm)
                    .arg(&mut factors);
                // SAFETY: as above.
                unsafe { b.launch(rc(square, 256 * 8)) }
                    .map_err(CudaError::driver("launching pgq_hessian_prepare"))?;
                for d in &round {
                    self.factor_inverse(&mut factors, d, &mut workspace, &mut info)?;
                }
                let mut b = stream.launch_builder(self.kernel("pgq_u_from_inverse")?);
                b.arg(&round_descs)
                    .arg(&factors)
                    .arg(&mut ufac)
                    .arg(&mut attempt_flags);
                // SAFETY: as above.
                unsafe { b.launch(rc(square, 256 * 8)) }
                    .map_err(CudaError::driver("launching pgq_u_from_inverse"))?;
                let infos = self.download(&info)?;
                let failed = self.download(&attempt_flags)?;
                active.retain(|&i| {
                    let ok = infos[i] == 0 && failed[i] == 0;
                    if ok {
                        return false;
                    }
                    if attempts[i] >= MAX_DAMP_ATTEMPTS {
                        outcome[i] = Some(format!(
                            "the Hessian is not positive definite after {} dampings",
                            attempts[i]
                        ));
                        return false;
                    }
                    damp[i] = next_damp(damp[i]);
                    true
                });
            }
            // The sweep over every factored matrix, in one launch.
            let ready: Vec<MatDesc> = layout
                .descs
                .iter()
                .filter(|d| d.method == 1 && outcome[d.id as usize].is_none())
                .copied()
                .collect();
            let ready_tasks = sweep_tasks(&ready)?;
            if !ready_tasks.is_empty() {
                let ready_descs = self.upload(&ready)?;
                let tasks = self.upload(&ready_tasks)?;
                let c = LaunchConfig {
                    grid_dim: ((ready_tasks.len() / 2) as u32, 1, 1),
                    block_dim: (SWEEP_THREADS, 1, 1),
                    shared_mem_bytes: SWEEP_SHARED_BYTES,
                };
                let mut b = stream.launch_builder(self.kernel("pgq_gptq_sweep")?);
                b.arg(&ready_descs)
                    .arg(&tasks)
                    .arg(&weights)
                    .arg(&mut work)
                    .arg(&ufac)
                    .arg(&scales)
                    .arg(&perm)
                    .arg(&dead)
                    .arg(&mut codes);
                // SAFETY: as above; 80 KB of dynamic shared memory was
                // allowed when the kernel was loaded.
                unsafe { b.launch(c) }.map_err(CudaError::driver("launching pgq_gptq_sweep"))?;
            }
        }
        let end = stream
            .record_event(None)
            .map_err(CudaError::driver("recording an event"))?;
        end.synchronize()
            .map_err(CudaError::driver("running the kernels"))?;
        let device_ms = f64::from(
            begin
                .elapsed_ms(&end)
                .map_err(CudaError::driver("reading the events"))?,
        );

        let codes_host = self.download(&codes)?;
        let bits_host = self.download(&scale_bits)?;
        let choices_host = self.download(&choices)?;
        let flags_end = self.download(&flags)?;
        let outcomes = layout
            .descs
            .iter()
            .zip(&specs)
            .map(|(d, spec)| {
                let i = d.id as usize;
                if let Some(reason) = outcome[i].take().or_else(|| flag_reason(flags_end[i])) {
                    return Err(reason);
                }
                let elements = (d.rows * d.cols) as usize;
                let units = (d.rows * d.groups) as usize;
                let codes = &codes_host[d.code_off as usize..][..elements];
                let scales: Vec<f16> = bits_host[d.scale_off as usize..][..units]
                    .iter()
                    .map(|&b| f16::from_bits(b))
                    .collect();
                if codes.contains(&-128) || scales.iter().any(|s| s.is_nan()) {
                    return Err("the kernels left codes or scales unwritten (a pgq bug)".into());
                }
                Ok(MatrixCodes {
                    codes: codes.to_vec(),
                    scales,
                    choices: if d.clip_mode == 2 {
                        choices_host[d.choice_off as usize..][..units].to_vec()
                    } else {
                        Vec::new()
                    },
                    damp: spec.gptq.map(|_| (damp[i], attempts[i])),
                })
            })
            .collect();
        Ok(BatchRun {
            outcomes,
            device_ms,
            host_ms: started.elapsed().as_secs_f64() * 1e3,
        })
    }

    /// Fills `buf` with `byte`.
    fn poison<T>(&self, buf: &mut CudaSlice<T>, byte: u8) -> Result<(), CudaError> {
        let bytes = buf.num_bytes();
        let stream = self.stream.cu_stream();
        let (ptr, _guard) = buf.device_ptr_mut(&self.stream);
        // SAFETY: ptr addresses `bytes` bytes of this buffer, on our stream.
        unsafe { cudarc::driver::result::memset_d8_async(ptr, byte, bytes, stream) }
            .map_err(CudaError::driver("poisoning the outputs"))
    }

    /// potrf's workspace (doubles) for matrices of up to `n` columns;
    /// `factors` (at least n x n) is passed as the matrix, which the size
    /// query does not read.
    fn potrf_workspace(&self, n: usize, factors: &mut CudaSlice<f64>) -> Result<i32, CudaError> {
        let n = i32::try_from(n).map_err(|_| CudaError::TooLarge { what: "a Hessian" })?;
        let mut lwork = 0i32;
        let (a, _guard) = factors.device_ptr_mut(&self.stream);
        // SAFETY: a size query on a valid device pointer.
        let status = unsafe {
            solver::cusolverDnDpotrf_bufferSize(
                self.solver.cu(),
                solver::cublasFillMode_t::CUBLAS_FILL_MODE_LOWER,
                n,
                a as *mut f64,
                n,
                &mut lwork,
            )
        };
        if status != solver::cusolverStatus_t::CUSOLVER_STATUS_SUCCESS {
            return Err(lib_err("cuSOLVER", "sizing potrf's workspace")(format!(
                "{status:?}"
            )));
        }
        Ok(lwork.max(1))
    }

    /// Cholesky `A = M M^T` (cuSOLVER potrf, lower, in place; `info[id]`
    /// is positive when A is not positive definite), then `B <- M^-1`
    /// (cuBLAS trsm of M against the identity in B), for descriptor `d`.
    fn factor_inverse(
        &self,
        factors: &mut CudaSlice<f64>,
        d: &MatDesc,
        workspace: &mut CudaSlice<f64>,
        info: &mut CudaSlice<i32>,
    ) -> Result<(), CudaError> {
        let n = i32::try_from(d.cols).map_err(|_| CudaError::TooLarge { what: "a Hessian" })?;
        let square = (d.cols * d.cols) as usize;
        let lwork = i32::try_from(workspace.len()).unwrap_or(i32::MAX);
        let (base, _guard) = factors.device_ptr_mut(&self.stream);
        let a = (base + d.f_off * 8) as *mut f64;
        let b = (base + (d.f_off + square as u64) * 8) as *mut f64;
        let (work, _w) = workspace.device_ptr_mut(&self.stream);
        let (info_base, _i) = info.device_ptr_mut(&self.stream);
        let info_ptr = (info_base + d.id * 4) as *mut i32;
        // SAFETY: a and b point at this matrix's two n x n f64 blocks of the
        // factor arena, the workspace holds lwork doubles, info one i32 per
        // job; all on the handle's stream.
        let status = unsafe {
            solver::cusolverDnDpotrf(
                self.solver.cu(),
                solver::cublasFillMode_t::CUBLAS_FILL_MODE_LOWER,
                n,
                a,
                n,
                work as *mut f64,
                lwork,
                info_ptr,
            )
        };
        if status != solver::cusolverStatus_t::CUSOLVER_STATUS_SUCCESS {
            return Err(lib_err("cuSOLVER", "factoring a Hessian (potrf)")(format!(
                "{status:?}"
            )));
        }
        let one = 1.0f64;
        // SAFETY: as above; alpha is a host pointer (the default mode).
        let status = unsafe {
            blas::cublasDtrsm_v2(
                *self.blas.handle(),
                blas::cublasSideMode_t::CUBLAS_SIDE_LEFT,
                blas::cublasFillMode_t::CUBLAS_FILL_MODE_LOWER,
                blas::cublasOperation_t::CUBLAS_OP_N,
                blas::cublasDiagType_t::CUBLAS_DIAG_NON_UNIT,
                n,
                n,
                &one,
                a,
                n,
                b,
                n,
            )
        };
        if status != blas::cublasStatus_t::CUBLAS_STATUS_SUCCESS {
            return Err(lib_err("cuBLAS", "inverting a Cholesky factor (trsm)")(
                format!("{status:?}"),
            ));
        }
        Ok(())
    }

    /// Packs each of `tensors` (codes, bits) with `pgq_pack_codes`, in one
    /// launch.
    pub fn pack(&self, tensors: &[(&[i8], u8)]) -> Result<Vec<Vec<u8>>, CudaError> {
        let mut descs = Vec::with_capacity(tensors.len());
        let (mut codes_len, mut out_len) = (0u64, 0u64);
        for (codes, bits) in tensors {
            let count = codes.len() as u64;
            let bytes = (count * u64::from(*bits)).div_ceil(8);
            descs.push(PackDesc {
                code_off: codes_len,
                count,
                bits: u64::from(*bits),
                out_off: out_len,
            });
            codes_len += count;
            out_len += bytes;
        }
        let all: Vec<i8> = tensors
            .iter()
            .flat_map(|(c, _)| c.iter().copied())
            .collect();
        let codes = self.upload(&all)?;
        let table = self.upload(&descs)?;
        let mut out = self.zeros::<u8>(out_len)?;
        let most = descs
            .iter()
            .map(|d| (d.count * d.bits).div_ceil(8))
            .max()
            .unwrap_or(0);
        let c = LaunchConfig {
            grid_dim: grid(most, 256, descs.len()),
            block_dim: (256, 1, 1),
            shared_mem_bytes: 0,
        };
        let mut b = self.stream.launch_builder(self.kernel("pgq_pack_codes")?);
        b.arg(&table).arg(&codes).arg(&mut out);
        // SAFETY: arguments match the kernel; offsets lie in the buffers.
        unsafe { b.launch(c) }.map_err(CudaError::driver("launching pgq_pack_codes"))?;
        let host = self.download(&out)?;
        Ok(descs
            .iter()
            .map(|d| host[d.out_off as usize..][..(d.count * d.bits).div_ceil(8) as usize].to_vec())
            .collect())
    }
}

/// The reason a kernel's flags send a matrix back to the CPU.
fn flag_reason(flags: u32) -> Option<String> {
    if flags == 0 {
        None
    } else if flags & FLAG_NONFINITE_W != 0 {
        Some("non-finite weights (the CPU path reports where)".into())
    } else if flags & FLAG_BAD_HESSIAN != 0 {
        Some("a non-finite Hessian or a negative diagonal (the CPU path reports where)".into())
    } else if flags & FLAG_SCALE_OVERFLOW != 0 {
        Some("a scale beyond fp16 (the CPU path reports where)".into())
    } else {
        Some(format!("kernel flags {flags:#x}"))
    }
}
